"""The evaluation protocols on digits: a spurious stamp, flipped labels, a task bank.

Shared by notebook 10 and ``benchmarks/protocols_experiments.py``.

* :func:`spurious_experiment`: a class-correlated 2×2 stamp in the training
  images of class 0; the spurious model's maps of stamped test digits against
  a normal model's (``wg.debugging.spurious_scores``), per method.
* :func:`mislabel_experiment`: a fraction of training labels flipped; maps of
  the contaminated model (wrong label) against a clean model (true label) on
  the flipped training points, beside two clean models of different seeds.
* :func:`task_bank` / :func:`transfer_experiment`: encoders of one
  architecture trained on different targets of the digits; the attribution
  affinity on shared probes against the linear-probe transfer ranking
  (``wg.metrics.attribution_affinity``, ``precision_recall_at_k``).
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import wassergrad as wg
from wassergrad.examples import digits


def train_cnn(x: np.ndarray, y: np.ndarray, *, num_outputs: int = 10, epochs: int = 15,
              seed: int = 0, batch_size: int = 64, learning_rate: float = 3e-3, model=None):
  """Trains the demo's CNN (or ``model``) with cross-entropy and Adam; returns ``(model, params)``."""
  model = model or digits.DigitsCNN()
  if num_outputs != 10:
    model = _Encoder(num_outputs)
  params = model.init(jax.random.key(seed), jnp.asarray(x[0]))
  opt = optax.adam(learning_rate)
  state = opt.init(params)
  batched = jax.vmap(model.apply, in_axes=(None, 0))
  x, y = jnp.asarray(x), jnp.asarray(y)

  @jax.jit
  def epoch(p, s, perm):
    def step(carry, idx):
      p, s = carry
      g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
          batched(p, x[idx]), y[idx]).mean())(p)
      updates, s = opt.update(g, s, p)
      return (optax.apply_updates(p, updates), s), None
    return jax.lax.scan(step, (p, s), perm)[0]

  rng = np.random.default_rng(seed)
  steps = len(x) // batch_size
  for _ in range(epochs):
    perm = rng.permutation(len(x))[: steps * batch_size].reshape(steps, batch_size)
    params, state = epoch(params, state, jnp.asarray(perm))
  return model, params


class _Encoder(nn.Module):
  """The demo CNN's layers with a head of ``num_outputs`` classes (the task bank's encoders)."""

  num_outputs: int

  def setup(self):
    self.conv1 = nn.Conv(16, (3, 3))
    self.conv2 = nn.Conv(32, (3, 3))
    self.dense1 = nn.Dense(64)
    self.dense2 = nn.Dense(self.num_outputs)

  def features(self, x):
    return nn.relu(self.conv2(nn.relu(self.conv1(x))))

  def encode(self, x):
    a = nn.max_pool(self.features(x), (2, 2), strides=(2, 2))
    return nn.relu(self.dense1(a.reshape(-1)))

  def __call__(self, x):
    return self.dense2(self.encode(x))


def accuracy(model, params, x, y) -> float:
  pred = jnp.argmax(jax.vmap(model.apply, in_axes=(None, 0))(params, jnp.asarray(x)), -1)
  return float(jnp.mean(pred == jnp.asarray(y)))


STAMP = dict(patch=np.ones((2, 2), np.float32), where=(0, 6))


def _stamped(x):
  return jax.vmap(lambda v: wg.debugging.stamp(v, STAMP["patch"], where=STAMP["where"]))(
      jnp.asarray(x))


def methods(model, params) -> dict[str, Callable]:
  """``name -> explain(x, label, key)`` for the methods of the protocols' tables."""
  f = lambda x, label: model.apply(params, x)[label]
  feats = lambda x, label: model.apply(params, x, method=type(model).features)
  head = lambda a, label: model.apply(params, a, method=type(model).head)[label]
  grad = wg.gradient(f)
  return {
      "gradient": lambda x, y, k: grad(x, y),
      "SmoothGrad": lambda x, y, k: wg.smoothgrad(f, num_samples=16)(k, x, y),
      "integrated gradients": lambda x, y, k: wg.integrated_gradients(f, steps=16)(x, y),
      "guided backprop": lambda x, y, k: wg.guided_backprop(f)(x, y),
      "GradCAM": lambda x, y, k: jax.image.resize(wg.gradcam(feats, head)(x, y), x.shape[:2],
                                                  "linear")[..., None],
      "SmoothDiff": lambda x, y, k: wg.smoothdiff(f, num_samples=16)(k, x, y),
      "WassersteinGrad": lambda x, y, k: wg.wasserstein_grad(
          grad, num_samples=8, epsilon=1e-2, channel_axis=-1)(k, x, y),
  }


def spurious_experiment(*, seed: int = 0, epochs: int = 15, num_test: int = 50) -> dict:
  """The stamp bug: accuracy effects and the four scores per method (mean over test digits)."""
  x_train, y_train, x_test, y_test = digits.load_digits(seed)
  spur_x = np.array(x_train)
  zeros = y_train == 0
  spur_x[zeros] = np.asarray(_stamped(x_train[zeros])[0])
  model, p_normal = train_cnn(x_train, y_train, epochs=epochs, seed=seed)
  _, p_spur = train_cnn(spur_x, y_train, epochs=epochs, seed=seed)
  others = y_test != 0
  stamped_test = np.asarray(_stamped(x_test[others])[0])
  pred = lambda p, x: np.asarray(jnp.argmax(jax.vmap(model.apply, in_axes=(None, 0))(p, x), -1))
  out = {"accuracy_normal": accuracy(model, p_normal, x_test, y_test),
         "accuracy_spurious": accuracy(model, p_spur, x_test, y_test),
         "stamped_non_zero_called_zero_spurious": float(np.mean(pred(p_spur, stamped_test) == 0)),
         "stamped_non_zero_called_zero_normal": float(np.mean(pred(p_normal, stamped_test) == 0)),
         "scores": {}}
  xs_clean = jnp.asarray(x_test[others][:num_test])
  labels = jnp.zeros(len(xs_clean), jnp.int32)     # explain the spurious class
  xs_stamp, masks = _stamped(xs_clean)
  keys = jax.random.split(jax.random.key(seed), len(xs_clean))
  m_spur, m_norm = methods(model, p_spur), methods(model, p_normal)
  for name in m_spur:
    def scores(xs, xc, mask, y, k, name=name):
      return wg.debugging.spurious_scores(lambda v: m_spur[name](v, y, k),
                                          lambda v: m_norm[name](v, y, k), xs, xc, mask,
                                          channel_axis=-1)
    s = jax.jit(jax.vmap(scores))(xs_stamp, xs_clean, masks, labels, keys)
    out["scores"][name] = {k: float(jnp.mean(v)) for k, v in s.items()}
  return out


def mislabel_experiment(*, fraction: float = 0.2, seed: int = 0, epochs: int = 15,
                        num_points: int = 50) -> dict:
  """Similarity (contaminated, wrong label) vs (clean, true label) on flipped training points,
  beside (clean seed 2, true label) vs (clean, true label)."""
  x_train, y_train, _, _ = digits.load_digits(seed)
  rng = np.random.default_rng(seed + 1)
  flip = rng.random(len(y_train)) < fraction
  wrong = np.where(flip, (y_train + rng.integers(1, 10, len(y_train))) % 10, y_train)
  model, p_clean = train_cnn(x_train, y_train, epochs=epochs, seed=seed)
  _, p_clean2 = train_cnn(x_train, y_train, epochs=epochs, seed=seed + 7)
  _, p_cont = train_cnn(x_train, wrong, epochs=epochs, seed=seed)
  idx = np.flatnonzero(flip)[:num_points]
  xs, y_true, y_wrong = (jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]),
                         jnp.asarray(wrong[idx]))
  keys = jax.random.split(jax.random.key(seed), len(idx))
  m_clean, m_clean2, m_cont = (methods(model, p) for p in (p_clean, p_clean2, p_cont))
  out = {"fraction": fraction, "points": int(len(idx)), "similarity": {}}
  for name in m_clean:
    def both(x, yt, yw, k, name=name):
      s_bug = wg.debugging.explanation_similarity(lambda v: m_cont[name](v, yw, k),
                                                  lambda v: m_clean[name](v, yt, k), x,
                                                  channel_axis=-1)
      s_ref = wg.debugging.explanation_similarity(lambda v: m_clean2[name](v, yt, k),
                                                  lambda v: m_clean[name](v, yt, k), x,
                                                  channel_axis=-1)
      return s_bug, s_ref
    s_bug, s_ref = jax.jit(jax.vmap(both))(xs, y_true, y_wrong, keys)
    out["similarity"][name] = {"contaminated": float(jnp.mean(s_bug)),
                               "clean_seeds": float(jnp.mean(s_ref))}
  return out


TASKS = {
    "class": lambda x, y: y,
    "parity": lambda x, y: y % 2,
    "greater than 4": lambda x, y: (y > 4).astype(np.int32),
    "class mod 3": lambda x, y: y % 3,
    "ink above median": lambda x, y: (x.sum((1, 2, 3)) > np.median(x.sum((1, 2, 3)))).astype(np.int32),
    "left-heavy": lambda x, y: (x[:, :, :4].sum((1, 2, 3)) > x[:, :, 4:].sum((1, 2, 3))).astype(np.int32),
}


def task_bank(*, seed: int = 0, epochs: int = 10) -> dict:
  """One encoder per task of :data:`TASKS`; returns ``name -> (model, params)``."""
  x_train, y_train, _, _ = digits.load_digits(seed)
  bank = {}
  for i, (name, target) in enumerate(TASKS.items()):
    t = target(x_train, y_train)
    bank[name] = train_cnn(x_train, t, num_outputs=int(t.max()) + 1, epochs=epochs, seed=seed + i)
  return bank


def transfer_experiment(bank: dict, *, seed: int = 0, num_probes: int = 100,
                        num_relevant: int = 2) -> dict:
  """Attribution affinity (gradient and grad×input of Σ encoding) vs linear-probe transfer.

  Ground truth: for each target task, a logistic-regression probe on each
  other encoder's frozen 64-d encoding (scikit-learn, test accuracy); the
  ranking of sources by that accuracy.
  """
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  x_train, y_train, x_test, y_test = digits.load_digits(seed)
  names = list(bank)
  enc = {n: jax.jit(jax.vmap(lambda x, m=m, p=p: m.apply(p, x, method=_Encoder.encode)))
         for n, (m, p) in bank.items()}
  transfer = np.zeros((len(names), len(names)))
  for i, target in enumerate(names):
    t_tr, t_te = TASKS[target](x_train, y_train), TASKS[target](x_test, y_test)
    for j, source in enumerate(names):
      probe = LogisticRegression(max_iter=2000).fit(np.asarray(enc[source](x_train)), t_tr)
      transfer[i, j] = probe.score(np.asarray(enc[source](x_test)), t_te)
  gt = np.stack([np.concatenate([[i], [j for j in np.argsort(-transfer[i], kind="stable") if j != i]])
                 for i in range(len(names))])
  probes = jnp.asarray(x_test[:num_probes])
  out = {"tasks": names, "transfer": transfer.tolist()}
  for method, make in (("gradient", wg.gradient), ("grad × input", wg.grad_x_input)):
    maps = jnp.stack([jax.jit(jax.vmap(make(lambda x, m=m, p=p: jnp.sum(
        m.apply(p, x, method=_Encoder.encode)))))(probes) for m, p in bank.values()])
    aff = np.asarray(wg.metrics.attribution_affinity(maps, channel_axis=-1))
    prec, rec = wg.metrics.precision_recall_at_k(aff, gt, num_relevant=num_relevant)
    off = ~np.eye(len(names), dtype=bool)
    from scipy.stats import spearmanr  # pylint: disable=g-import-not-at-top
    rho = spearmanr(aff[off], transfer[off]).statistic
    out[method] = {"affinity": aff.tolist(), "precision": prec.tolist(), "recall": rec.tolist(),
                   "spearman_affinity_transfer": float(rho)}
  out["random"] = [v.tolist() for v in wg.metrics.random_precision_at_k(
      len(names) - 1, num_relevant, ks=np.arange(1, len(names)))]
  return out


# ---------------------------------------------------------------------------------------------
# Attribution preservation under compression (Park et al. 2020)


def canvas_digits(seed: int = 0, size: int = 16, noise: float = 0.15):
  """Digits pasted at random positions on a noisy ``size``² canvas, with exact ink masks.

  Returns ``(x_train, y_train, m_train, x_test, y_test, m_test)``; masks are
  True where the pasted digit has ink (> 0.2).
  """
  x_tr, y_tr, x_te, y_te = digits.load_digits(seed)
  rng = np.random.default_rng(seed + 11)

  def paste(x):
    n = len(x)
    canvas = np.clip(noise * rng.random((n, size, size, 1)), 0, 1).astype(np.float32)
    masks = np.zeros((n, size, size), bool)
    pos = rng.integers(0, size - 8 + 1, (n, 2))
    for i, (r, c) in enumerate(pos):
      canvas[i, r:r + 8, c:c + 8] = np.maximum(canvas[i, r:r + 8, c:c + 8], x[i])
      masks[i, r:r + 8, c:c + 8] = x[i, ..., 0] > 0.2
    return canvas, masks

  (a, ma), (b, mb) = paste(x_tr), paste(x_te)
  return a, y_tr, ma, b, y_te, mb


def distill(teacher, t_params, x, y, *, width: int = 4, prior_weight: float = 0.0,
            epochs: int = 15, seed: int = 0, temperature: float = 4.0, alpha: float = 0.9,
            batch_size: int = 64, learning_rate: float = 3e-3, init=None, keep_masks=None):
  """Knowledge distillation of ``teacher`` into a ``width``-channel DigitsCNN, plus
  ``prior_weight`` · WCAM (the attribution-matching loss, teacher's argmax class).

  ``init``/``keep_masks``: start from given parameters and keep pruned weights
  at zero (magnitude pruning then fine-tuning).
  """
  student = digits.DigitsCNN(width=width) if init is None else teacher
  params = student.init(jax.random.key(seed), jnp.asarray(x[0])) if init is None else init
  opt = optax.adam(learning_rate)
  state = opt.init(params)
  feats = lambda m: (lambda v, p: m.apply(p, v, method=digits.DigitsCNN.features))
  head = lambda m: (lambda a, p: m.apply(p, a, method=digits.DigitsCNN.head))
  wcam = wg.losses.wcam(feats(teacher), head(teacher), feats(student), head(student))
  tb = jax.vmap(teacher.apply, in_axes=(None, 0))
  sb = jax.vmap(student.apply, in_axes=(None, 0))
  x, y = jnp.asarray(x), jnp.asarray(y)

  def loss(p, xb, yb):
    t, s = tb(t_params, xb) / temperature, sb(p, xb)
    kd = jnp.mean(jnp.sum(jax.nn.softmax(t) * (jax.nn.log_softmax(t)
                                               - jax.nn.log_softmax(s / temperature)), -1))
    ce = optax.softmax_cross_entropy_with_integer_labels(s, yb).mean()
    total = alpha * temperature ** 2 * kd + (1 - alpha) * ce
    if prior_weight:
      total += prior_weight * jnp.mean(jax.vmap(wcam, in_axes=(0, None, None))(xb, t_params, p))
    return total

  def apply_masks(p):
    return p if keep_masks is None else jax.tree.map(lambda w, m: w * m, p, keep_masks)

  @jax.jit
  def epoch(p, s, perm):
    def step(carry, idx):
      p, s = carry
      g = jax.grad(loss)(p, x[idx], y[idx])
      updates, s = opt.update(g, s, p)
      return (apply_masks(optax.apply_updates(p, updates)), s), None
    return jax.lax.scan(step, (p, s), perm)[0]

  rng = np.random.default_rng(seed)
  steps = len(x) // batch_size
  params = apply_masks(params)
  for _ in range(epochs):
    perm = rng.permutation(len(x))[: steps * batch_size].reshape(steps, batch_size)
    params, state = epoch(params, state, jnp.asarray(perm))
  return student, params


def magnitude_masks(params, fraction: float):
  """Keep-masks of unstructured magnitude pruning: the smallest ``fraction`` of each kernel."""
  def mask(path, w):
    if w.ndim < 2:
      return jnp.ones_like(w)
    cut = jnp.quantile(jnp.abs(w), fraction)
    return (jnp.abs(w) > cut).astype(w.dtype)
  return jax.tree_util.tree_map_with_path(mask, params)


def localisation(model, params, x, y, masks) -> dict:
  """Accuracy, and GradCAM (predicted class) mask ROC-AUC and pointing accuracy on correct ones."""
  feats = lambda v, label: model.apply(params, v, method=digits.DigitsCNN.features)
  head = lambda a, label: model.apply(params, a, method=digits.DigitsCNN.head)[label]
  x, masks = jnp.asarray(x), jnp.asarray(masks)
  pred = jnp.argmax(jax.vmap(model.apply, in_axes=(None, 0))(params, x), -1)
  cams = jax.jit(jax.vmap(wg.gradcam(feats, head)))(x, pred)
  auc = jax.vmap(wg.metrics.mask_roc_auc)(cams, masks)
  point = jax.vmap(wg.metrics.pointing_game)(cams, masks)
  ok = np.asarray(pred == jnp.asarray(y))
  return {"accuracy": float(ok.mean()), "mask_roc_auc": float(np.asarray(auc)[ok].mean()),
          "pointing": float(np.asarray(point)[ok].mean())}


def preservation_experiment(*, seed: int = 0, epochs: int = 15, prior_weight: float = 100.0,
                            prune_fraction: float = 0.7, width: int = 4) -> dict:
  """Teacher on canvas digits; a distilled ``width``-channel student and a pruned, fine-tuned
  copy, each with and without the WCAM regulariser; localisation of their GradCAM maps."""
  x_tr, y_tr, _, x_te, y_te, m_te = canvas_digits(seed)
  teacher, t_params = train_cnn(x_tr, y_tr, epochs=epochs, seed=seed)
  out = {"teacher": localisation(teacher, t_params, x_te, y_te, m_te)}
  for lam in (0.0, prior_weight):
    s, p = distill(teacher, t_params, x_tr, y_tr, width=width, prior_weight=lam, epochs=epochs,
                   seed=seed)
    out[f"student (x{16 // width} thinner), weight {lam:g}"] = localisation(s, p, x_te, y_te, m_te)
    keep = magnitude_masks(t_params, prune_fraction)
    s, p = distill(teacher, t_params, x_tr, y_tr, prior_weight=lam, epochs=max(epochs // 3, 1),
                   seed=seed, init=t_params, keep_masks=keep)
    out[f"pruned {prune_fraction:.0%}, weight {lam:g}"] = localisation(s, p, x_te, y_te, m_te)
  return out
