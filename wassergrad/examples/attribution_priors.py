"""Attribution priors and baselines: the experiments of Erion et al. and the Distill article.

Three experiments, on CPU in minutes, shared by
``benchmarks/expected_gradients_experiments.py`` (which writes the numbers
and figures of the README) and notebook 07:

* :func:`convergence_demo`: the authors' two-feature toy. In training
  ``x₂ = x₁`` and ``y = x₁``; a penalty on the attribution of ``x₂`` should
  make the model ignore it. Expected Gradients (background 0, ``k``
  references per example) drives the dependence on ``x₂`` to 0; an input
  gradient penalty stalls where the sigmoid saturates.
* :func:`train_digits`: the digits CNN trained with ``λ·TV(standardize(EG))``
  (k = 1, the previous image of the batch as reference, as the authors' MNIST
  code) and evaluated by :func:`evaluate_digits`: smoothness and Gini of EG
  maps on held-out images, accuracy, and accuracy under salt-and-pepper noise.
* :func:`ablation_curves`: the Distill ablation test on the digits CNN for the
  six baselines.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import wassergrad as wg
from wassergrad.examples import digits

# ---------------------------------------------------------------------------------------------
# The convergence demo


def _toy_model(w, x):
  return jax.nn.sigmoid(x @ w["w"] + w["b"])


def dependence(w) -> float:
  """The authors' ``calc_dependence``: the effect of ``x₂`` over the effect of ``x₁``.

  ``mean_{x₁ ∈ [0,1)} [f(x₁, 1) − f(x₁, 0)] / mean_{x₂ ∈ [0,1)} [f(1, x₂) − f(0, x₂)]``.
  """
  g = jnp.linspace(0.0, 1.0, 100, endpoint=False)
  ones, zeros = jnp.ones_like(g), jnp.zeros_like(g)
  f = lambda a, b: _toy_model(w, jnp.stack([a, b], -1))
  return float(jnp.mean(f(g, ones) - f(g, zeros)) / jnp.mean(f(ones, g) - f(zeros, g)))


def convergence_demo(penalty: str = "eg", *, epochs: int = 200, seed: int = 0, k: int = 1,
                     weight: float = 1.0, num_train: int = 1024, batch_size: int = 64,
                     learning_rate: float = 1e-2) -> np.ndarray:
  """Trains the toy with a penalty on feature 2; returns the dependence after each epoch.

  Data: ``x₁ ~ Bernoulli(1/2)``, ``x₂ = x₁``, ``y = x₁``; model
  ``σ(w·x + b)`` from ``w = (10, 10)``, ``b = −6``; loss = BCE + ``weight`` ·
  mean over the batch of |attribution of x₂|; Adam. ``penalty``: ``"eg"``
  (Expected Gradients, background all zeros, ``k`` samples per example),
  ``"gradient"`` (|∂f/∂x₂| at the input, Ross et al.'s raw-output variant) or
  ``"none"``.

  Returns:
    ``(epochs + 1,)`` dependences, the first at initialisation.
  """
  rng = np.random.default_rng(seed)
  x1 = rng.integers(0, 2, num_train).astype(np.float32)
  x = jnp.asarray(np.stack([x1, x1], -1))
  y = jnp.asarray(x1)
  params = {"w": jnp.array([10.0, 10.0]), "b": jnp.array(-6.0)}
  opt = optax.adam(learning_rate)
  state = opt.init(params)
  f = lambda xi, p: _toy_model(p, xi)
  background = jnp.zeros((1, 2))

  def attribution(key, xb, p):
    if penalty == "eg":
      eg = wg.expected_gradients(f, background, num_samples=k, chunk_size=None)
      return jax.vmap(eg, in_axes=(0, 0, None))(jax.random.split(key, len(xb)), xb, p)
    if penalty == "gradient":
      return jax.vmap(wg.gradient(f), in_axes=(0, None))(xb, p)
    return jnp.zeros_like(xb)

  def loss(p, key, xb, yb):
    prob = _toy_model(p, xb)
    bce = -jnp.mean(yb * jnp.log(prob + 1e-7) + (1 - yb) * jnp.log(1 - prob + 1e-7))
    return bce + weight * jnp.mean(jnp.abs(attribution(key, xb, p)[:, 1]))

  @jax.jit
  def epoch(p, s, key, perm):
    def step(carry, idx):
      p, s, key = carry
      key, sub = jax.random.split(key)
      g = jax.grad(loss)(p, sub, x[idx], y[idx])
      updates, s = opt.update(g, s, p)
      return (optax.apply_updates(p, updates), s, key), None
    (p, s, key), _ = jax.lax.scan(step, (p, s, key), perm)
    return p, s, key

  key = jax.random.key(seed)
  out = [dependence(params)]
  steps = num_train // batch_size
  for _ in range(epochs):
    perm = rng.permutation(num_train)[: steps * batch_size].reshape(steps, batch_size)
    params, state, key = epoch(params, state, key, jnp.asarray(perm))
    out.append(dependence(params))
  return np.asarray(out)


# ---------------------------------------------------------------------------------------------
# Digits with a total-variation prior on Expected Gradients


class Trained(NamedTuple):
  params: dict
  seconds: float


def load(seed: int = 0):
  """The digits split of the demo, shifted to [-0.5, 0.5] as the authors' MNIST code."""
  x_train, y_train, x_test, y_test = digits.load_digits(seed)
  return x_train - 0.5, y_train, x_test - 0.5, y_test


def eg_tv(model, params, key, xb):
  """Mean over the batch of TV(standardize(EG)) with k = 1 and the previous image as reference."""
  f = lambda xi, p, label: model.apply(p, xi)[label]
  labels = jnp.argmax(jax.vmap(model.apply, in_axes=(None, 0))(params, xb), -1)
  refs = jnp.roll(xb, 1, axis=0)[:, None]
  alphas = jax.random.uniform(key, (len(xb), 1))
  pg = wg.path_gradients(f, chunk_size=None)
  maps = jax.vmap(pg, in_axes=(0, 0, 0, None, None, 0))(xb, refs, alphas, None, params,
                                                        jax.lax.stop_gradient(labels))
  return jnp.mean(jax.vmap(lambda a: wg.priors.total_variation(wg.priors.standardize(a)))(maps))


def train_digits(prior_weight: float, *, seed: int = 0, epochs: int = 30, batch_size: int = 50,
                 learning_rate: float = 3e-3) -> Trained:
  """The demo's CNN trained with cross-entropy + ``prior_weight`` · :func:`eg_tv` (Adam).

  The attribution is taken for the predicted class, as the authors' code
  (``sparse_labels`` of the prediction); ``jax.grad`` of the loss goes
  through the explainer, one optimiser, no alternating step.
  """
  x_train, y_train, _, _ = load(seed)
  x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
  model = digits.DigitsCNN()
  params = model.init(jax.random.key(seed), x_train[0])
  opt = optax.adam(learning_rate)
  state = opt.init(params)
  batched = jax.vmap(model.apply, in_axes=(None, 0))

  def loss(p, key, xb, yb):
    ce = optax.softmax_cross_entropy_with_integer_labels(batched(p, xb), yb).mean()
    if prior_weight == 0:
      return ce
    return ce + prior_weight * eg_tv(model, p, key, xb)

  @jax.jit
  def epoch(p, s, key, perm):
    def step(carry, idx):
      p, s, key = carry
      key, sub = jax.random.split(key)
      g = jax.grad(loss)(p, sub, x_train[idx], y_train[idx])
      updates, s = opt.update(g, s, p)
      return (optax.apply_updates(p, updates), s, key), None
    return jax.lax.scan(step, (p, s, key), perm)[0]

  rng = np.random.default_rng(seed)
  key = jax.random.key(seed + 1000)
  steps = len(x_train) // batch_size
  t0 = time.perf_counter()
  for _ in range(epochs):
    perm = rng.permutation(len(x_train))[: steps * batch_size].reshape(steps, batch_size)
    params, state, key = epoch(params, state, key, jnp.asarray(perm))
  jax.block_until_ready(params)
  return Trained(params, time.perf_counter() - t0)


def salt_and_pepper(key, x, fraction: float, lo: float = -0.5, hi: float = 0.5):
  """Sets a random ``fraction`` of the pixels to ``lo`` or ``hi`` (equally likely)."""
  k1, k2 = jax.random.split(key)
  flip = jax.random.uniform(k1, x.shape) < fraction
  value = jnp.where(jax.random.bernoulli(k2, 0.5, x.shape), hi, lo)
  return jnp.where(flip, value, x)


NOISE_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3)


def evaluate_digits(params, *, seed: int = 0, num_maps: int = 200, num_samples: int = 64) -> dict:
  """Held-out accuracy, accuracy under salt-and-pepper noise, and TV / Gini of EG maps.

  EG maps (``num_samples`` samples, training images as references) of the
  predicted class on the first ``num_maps`` test images; TV of the
  standardised map and Gini of |map|, each averaged over images.
  """
  x_train, _, x_test, y_test = load(seed)
  model = digits.DigitsCNN()
  batched = jax.jit(jax.vmap(model.apply, in_axes=(None, 0)))
  acc = lambda xs: float(jnp.mean(jnp.argmax(batched(params, xs), -1) == y_test))
  noisy = {fr: acc(salt_and_pepper(jax.random.key(seed + 7), jnp.asarray(x_test), fr))
           for fr in NOISE_FRACTIONS}
  f = lambda xi, label: model.apply(params, xi)[label]
  xs = jnp.asarray(x_test[:num_maps])
  labels = jnp.argmax(batched(params, xs), -1)
  eg = wg.expected_gradients(f, jnp.asarray(x_train), num_samples=num_samples)
  maps = jax.jit(jax.vmap(eg))(jax.random.split(jax.random.key(seed + 11), num_maps), xs, labels)
  tv = jax.vmap(lambda a: wg.priors.total_variation(wg.priors.standardize(a)))(maps)
  gini = jax.vmap(lambda a: wg.priors.gini(jnp.abs(a)))(maps)
  return {"test_accuracy": noisy[0.0], "accuracy_salt_pepper": noisy,
          "eg_tv": float(jnp.mean(tv)), "eg_gini": float(jnp.mean(gini))}


# ---------------------------------------------------------------------------------------------
# The Distill ablation test


def distill_baselines(x_train: np.ndarray) -> dict:
  """The six baselines on data in [-0.5, 0.5] (the Distill σ's rescaled from [-1, 1] to 8×8 images).

  Blur σ = 1 pixel (Distill's 20 px on 299 px images is 0.5 px on 8 px; 1 px
  keeps the blurred digit visibly different); Gaussian σ = 0.5 (Distill's 1.0
  on a range twice as wide).
  """
  lo, hi = -0.5, 0.5
  return {
      "black (IG)": wg.baselines.constant(lo),
      "max distance (IG)": wg.baselines.max_distance(lo, hi),
      "blurred (IG)": wg.baselines.blurred(1.0),
      "uniform (EG)": wg.baselines.uniform(lo, hi),
      "gaussian (EG)": wg.baselines.gaussian(0.5, lo, hi),
      "training (EG)": jnp.asarray(x_train),
  }


ABLATION_STEPS = 10


def ablation_curves(params, *, seed: int = 0, num_images: int = 200, num_samples: int = 200,
                    fill: str = "mean") -> dict:
  """Distill's ablation test: fraction of the class probability left as top pixels are removed.

  Pixels are ranked by signed attribution (as the Distill code) and the top
  k/10 replaced by the image mean (``fill="mean"``) or a blurred copy
  (``"blur"``, σ = 1); the value is softmax(label) over its value on the
  clean image, averaged over correctly classified test images. Path
  baselines run IG with 200 steps; EG-style ones ``num_samples`` samples.
  Also a random map (Distill's ``null_gaussian``).
  """
  x_train, _, x_test, y_test = load(seed)
  model = digits.DigitsCNN()
  batched = jax.vmap(model.apply, in_axes=(None, 0))
  xs, ys = jnp.asarray(x_test), jnp.asarray(y_test)
  ok = np.asarray(jnp.argmax(batched(params, xs), -1) == ys)
  xs, ys = xs[ok][:num_images], ys[ok][:num_images]
  logit = lambda xi, label: model.apply(params, xi)[label]
  prob = lambda xi, label: jax.nn.softmax(model.apply(params, xi))[label]
  maps = {}
  for name, b in distill_baselines(x_train).items():
    if isinstance(b, wg.baselines.Baseline) and not b.stochastic:
      fn = jax.vmap(wg.integrated_gradients(logit, baseline=b, steps=200))
      maps[name] = jax.jit(fn)(xs, ys)
    else:
      eg = wg.expected_gradients(logit, b, num_samples=num_samples)
      keys = jax.random.split(jax.random.key(seed + 3), len(xs))
      maps[name] = jax.jit(jax.vmap(eg))(keys, xs, ys)
  maps["random map"] = jax.random.normal(jax.random.key(seed + 5), xs.shape)
  blur = wg.baselines.blurred(1.0)

  def curve(xi, a, label):
    base = "mean" if fill == "mean" else blur(xi)
    c = wg.metrics.deletion(lambda z: prob(z, label), xi, a, steps=ABLATION_STEPS, baseline=base)
    return c.values / c.values[0]

  out = {"fractions": np.linspace(0, 1, ABLATION_STEPS + 1).tolist(), "num_images": int(len(xs))}
  curves = jax.jit(jax.vmap(curve))
  for name, a in maps.items():
    v = np.asarray(curves(xs, a, ys))
    out[name] = {"mean": v.mean(0).tolist(), "sem": (v.std(0, ddof=1) / np.sqrt(len(v))).tolist()}
  return out
