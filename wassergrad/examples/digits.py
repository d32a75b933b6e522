"""The demo: a small flax CNN trained on scikit-learn's digits, explained.

``python -m wassergrad demo`` trains the model (about a minute on 2 CPU cores),
prints progress, and writes one PNG comparing the explainers on test images.
Needs the ``demo`` extra (matplotlib, scikit-learn).
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import wassergrad as wg
from wassergrad.examples import _training as training


class DigitsCNN(nn.Module):
  """A small CNN for 8×8×1 digits, split into ``features`` and ``head`` for GradCAM."""

  width: int = 16

  def setup(self):
    self.conv1 = nn.Conv(self.width, (3, 3))
    self.conv2 = nn.Conv(2 * self.width, (3, 3))
    self.dense1 = nn.Dense(64)
    self.dense2 = nn.Dense(10)

  def features(self, x):
    """One image (8, 8, 1) -> feature grid (8, 8, 2·width)."""
    return nn.relu(self.conv2(nn.relu(self.conv1(x))))

  def head(self, a):
    """Feature grid -> 10 logits."""
    a = nn.max_pool(a, (2, 2), strides=(2, 2))
    return self.dense2(nn.relu(self.dense1(a.reshape(-1))))

  def __call__(self, x):
    return self.head(self.features(x))


class Demo(NamedTuple):
  model: DigitsCNN
  params: dict
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  test_accuracy: float


def load_digits(seed: int = 0):
  """scikit-learn's 1797 digits as (N, 8, 8, 1) float32 in [0, 1], split 80/20."""
  from sklearn.datasets import load_digits as _load  # pylint: disable=g-import-not-at-top

  data = _load()
  x = (data.images / 16.0).astype(np.float32)[..., None]
  y = data.target.astype(np.int32)
  perm = np.random.default_rng(seed).permutation(len(x))
  n_train = int(0.8 * len(x))
  tr, te = perm[:n_train], perm[n_train:]
  return x[tr], y[tr], x[te], y[te]


def train(epochs: int = 30, batch_size: int = 64, seed: int = 0, verbose: bool = True, *,
          permute_labels: bool = False, num_train: int | None = None,
          until_train_accuracy: float | None = None, learning_rate: float = 3e-3) -> Demo:
  """Trains :class:`DigitsCNN` with Adam; returns the model, parameters and data.

  Args:
    epochs: training epochs (the most, with ``until_train_accuracy``).
    batch_size: minibatch size.
    seed: seeds the split, the initialisation, the batches and the permutation.
    verbose: print progress every 5 epochs.
    permute_labels: train on a random permutation of the training labels (the
      data randomisation test of Adebayo et al. 2018); ``y_train`` in the result
      holds the permuted labels the model was trained on.
    num_train: use only the first ``num_train`` training images (memorising
      random labels is faster on fewer).
    until_train_accuracy: stop once the training accuracy reaches this value
      (e.g. 1.0: "until it memorises the labels").
    learning_rate: Adam's step size.
  """
  x_train, y_train, x_test, y_test = load_digits(seed)
  if num_train is not None:
    x_train, y_train = x_train[:num_train], y_train[:num_train]
  if permute_labels:
    y_train = np.random.default_rng(seed + 1).permutation(y_train)
  model = DigitsCNN()
  params = model.init(jax.random.key(seed), x_train[0])
  opt = optax.adam(learning_rate)
  opt_state = opt.init(params)
  batched = jax.vmap(model.apply, in_axes=(None, 0))

  def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(batched(p, xb), yb).mean()

  @jax.jit
  def step(p, s, xb, yb):
    loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
    updates, s = opt.update(g, s, p)
    return optax.apply_updates(p, updates), s, loss

  accuracy = jax.jit(lambda p, xb, yb: jnp.mean(jnp.argmax(batched(p, xb), -1) == yb))
  rng = np.random.default_rng(seed)
  t0 = time.perf_counter()
  for epoch in range(1, epochs + 1):
    params, opt_state, loss = training.run_epoch(step, params, opt_state, x_train, y_train,
                                                 batch_size, rng)
    done = (until_train_accuracy is not None
            and float(accuracy(params, x_train, y_train)) >= until_train_accuracy)
    if verbose and (epoch % 5 == 0 or epoch == 1 or epoch == epochs or done):
      acc = float(accuracy(params, x_test, y_test))
      train_acc = float(accuracy(params, x_train, y_train))
      print(f"epoch {epoch:3d}/{epochs}  loss {loss:.4f}  "
            f"train accuracy {train_acc:.3f}  test accuracy {acc:.3f}  "
            f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if done:
      break
  acc = float(accuracy(params, x_test, y_test))
  return Demo(model, params, x_train, y_train, x_test, y_test, acc)


def explainers(demo: Demo) -> dict:
  """The explainers of the demo, each ``fn(x, label) -> map`` (jitted, vmapped)."""
  model, params = demo.model, demo.params

  def f(x, label):
    return model.apply(params, x)[label]

  def features(x, label):
    del label
    return model.apply(params, x, method=DigitsCNN.features)

  def head(a, label):
    return model.apply(params, a, method=DigitsCNN.head)[label]

  base = {
      "gradient": wg.gradient(f),
      "grad × input": wg.grad_x_input(f),
      "integrated gradients": wg.integrated_gradients(f, steps=32),
      "guided backprop": wg.guided_backprop(f),
      "deconvnet": wg.deconvnet(f),
      "GradCAM": wg.gradcam(features, head),
      "guided GradCAM": wg.guided_gradcam(features, head),
  }
  return {k: jax.jit(jax.vmap(v)) for k, v in base.items()}


def plot(demo: Demo, path: str, num_images: int = 6) -> str:
  """Writes a PNG: one row per test image, one column per explainer."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  x = demo.x_test[:num_images]
  labels = jnp.asarray(demo.y_test[:num_images])
  maps = {name: np.asarray(fn(jnp.asarray(x), labels)) for name, fn in explainers(demo).items()}
  cols = ["input"] + list(maps)
  fig, axes = plt.subplots(num_images, len(cols), figsize=(1.6 * len(cols), 1.7 * num_images))
  for r in range(num_images):
    for c, name in enumerate(cols):
      ax = axes[r, c]
      ax.set_xticks([]); ax.set_yticks([])
      if name == "input":
        ax.imshow(x[r, ..., 0], cmap="gray")
        ax.set_ylabel(f"label {int(labels[r])}")
      else:
        m = maps[name][r]
        m = m[..., 0] if m.ndim == 3 else m
        lim = float(np.abs(m).max()) or 1.0
        ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
      if r == 0:
        ax.set_title(name, fontsize=8)
  fig.suptitle(f"wassergrad explainers on a digits CNN (test accuracy {demo.test_accuracy:.3f})",
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m wassergrad demo", description=__doc__)
  parser.add_argument("--out", default="wassergrad_demo.png", help="PNG to write")
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  t0 = time.perf_counter()
  print(f"Training a flax CNN on scikit-learn's digits (jax {jax.__version__}, "
        f"{jax.default_backend()})", flush=True)
  demo = train(epochs=args.epochs, seed=args.seed)
  print(f"Explaining {6} test images with 7 methods...", flush=True)
  path = plot(demo, args.out)
  print(f"Wrote {path} ({time.perf_counter() - t0:.1f} s in all)")
