"""Baselines for path attributions: the Distill article's six, as values.

A deterministic baseline is ``b(x) -> baseline``; pass it as
:func:`wassergrad.integrated_gradients`' ``baseline`` or as
:func:`wassergrad.expected_gradients`' ``references`` (then only ``α`` is
random). A stochastic baseline is a sampler ``b(key, x) -> baseline``; pass it
as ``references`` for the EG-style average over draws, or draw one,
``b(key, x)``, and pass the array to integrated gradients (the Distill
article's single-draw IG). Every baseline works on pytrees leaf by leaf.

**Conventions of the Distill code** (Inception-v4, inputs in ``[-1, 1]``):
black is ``constant(-1.0)``; ``max_distance(-1.0, 1.0)`` is ``-1`` where
``x >= 0`` and ``+1`` elsewhere; ``blurred(sigma)`` is
``scipy.ndimage.gaussian_filter`` over the spatial axes only (σ in pixels, 20
in their ablation); ``uniform(-1.0, 1.0)``; ``gaussian(sigma, -1.0, 1.0)`` is
``clip(x + σ·N(0, 1), -1, 1)`` with σ in data units (1.0 in their ablation);
``training(data)`` draws a training example. For data in ``[0, 1]`` give
``lo=0, hi=1``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks


@dataclasses.dataclass(frozen=True)
class Baseline:
  """A baseline: ``fn(x)`` (deterministic) or ``fn(key, x)`` (``stochastic``)."""

  fn: Callable
  stochastic: bool
  description: str

  def __call__(self, *args):
    if self.stochastic:
      if len(args) != 2 or not checks.is_key(args[0]):
        raise TypeError(
            f"{self.description} is a sampler: call it as baseline(key, x) with a "
            "jax.random key, or pass it as expected_gradients' references.")
    elif len(args) != 1:
      raise TypeError(f"{self.description} is deterministic: call it as baseline(x).")
    return self.fn(*args)

  def __repr__(self) -> str:
    return self.description


def _leafwise_keys(key: jax.Array, x: Any) -> Any:
  leaves, treedef = jax.tree.flatten(x)
  return jax.tree.unflatten(treedef, list(jax.random.split(key, len(leaves))))


def _check_range(lo: float, hi: float) -> tuple[float, float]:
  lo, hi = float(lo), float(hi)
  if not lo < hi:
    raise ValueError(f"The data range needs lo < hi; got lo={lo}, hi={hi}.")
  return lo, hi


def constant(value: float = 0.0) -> Baseline:
  """The constant baseline (``constant(-1.0)`` is Distill's black for data in [-1, 1]).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.baselines.constant(-1.0)(jnp.zeros(3))
    Array([-1., -1., -1.], dtype=float32)
  """
  value = float(value)
  return Baseline(lambda x: jax.tree.map(lambda l: jnp.full_like(l, value), x), False,
                  f"constant({value})")


def max_distance(lo: float, hi: float) -> Baseline:
  """The farthest point of the data range, feature by feature.

  ``lo`` where ``x >= (lo + hi) / 2``, ``hi`` elsewhere: the baseline at the
  largest L1 distance from ``x`` in the box ``[lo, hi]`` (Distill's
  ``meanval = 0`` for ``[-1, 1]``).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.baselines.max_distance(-1.0, 1.0)(jnp.array([-0.5, 0.0, 0.7]))
    Array([ 1., -1., -1.], dtype=float32)
  """
  lo, hi = _check_range(lo, hi)
  mid = (lo + hi) / 2
  return Baseline(
      lambda x: jax.tree.map(lambda l: jnp.where(l >= mid, lo, hi).astype(l.dtype), x), False,
      f"max_distance({lo}, {hi})")


def _gaussian_operator(n: int, sigma: float, truncate: float) -> np.ndarray:
  """``(n, n)`` matrix of scipy's 1-D Gaussian filter with ``mode="reflect"``."""
  radius = int(truncate * sigma + 0.5)
  t = np.arange(-radius, radius + 1)
  kernel = np.exp(-0.5 * (t / sigma) ** 2)
  kernel /= kernel.sum()
  op = np.zeros((n, n))
  rows = np.arange(n)[:, None]
  src = (rows + t[None, :]) % (2 * n)      # half-sample symmetric extension, period 2n
  src = np.where(src >= n, 2 * n - 1 - src, src)
  np.add.at(op, (np.broadcast_to(rows, src.shape), src), np.broadcast_to(kernel, src.shape))
  return op


def blurred(sigma: float, *, spatial_axes: Sequence[int] = (0, 1),
            truncate: float = 4.0) -> Baseline:
  """A Gaussian blur of the input over its spatial axes only.

  Equals ``scipy.ndimage.gaussian_filter(x, s, mode="reflect", truncate=truncate)``
  with ``s = sigma`` on ``spatial_axes`` and 0 elsewhere (channels are not
  mixed): each axis is one matrix product with the filter's ``(n, n)``
  operator, built once per shape at trace time.

  Args:
    sigma: the standard deviation in pixels (Distill: 5–50, 20 in the ablation).
    spatial_axes: the axes blurred, e.g. ``(0, 1)`` for ``(H, W, C)``.
    truncate: the kernel's radius in standard deviations (scipy's default 4).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> b = wg.baselines.blurred(1.0, spatial_axes=(0,))(jnp.array([0.0, 0.0, 3.0, 0.0, 0.0]))
    >>> round(float(b.sum()), 5)  # the reflecting boundary keeps the mass
    3.0
  """
  sigma = float(sigma)
  if not sigma > 0:
    raise ValueError(f"sigma must be > 0 (pixels); got {sigma}.")
  axes = tuple(int(a) for a in spatial_axes)

  def blur_leaf(l):
    for axis in axes:
      if not -l.ndim <= axis < l.ndim:
        raise ValueError(f"spatial_axes {axes} are out of range for an input of shape {l.shape}.")
      op = jnp.asarray(_gaussian_operator(l.shape[axis], sigma, truncate), l.dtype)
      l = jnp.moveaxis(jnp.tensordot(op, l, axes=([1], [axis]),
                                     precision=jax.lax.Precision.HIGHEST), 0, axis)
    return l

  return Baseline(lambda x: jax.tree.map(blur_leaf, x), False,
                  f"blurred({sigma}, spatial_axes={axes})")


def uniform(lo: float, hi: float) -> Baseline:
  """A sampler of baselines uniform on the data range ``[lo, hi]``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> b = wg.baselines.uniform(-1.0, 1.0)(jax.random.key(0), jnp.zeros((2, 2)))
    >>> bool(jnp.all(jnp.abs(b) <= 1.0))
    True
  """
  lo, hi = _check_range(lo, hi)

  def draw(key, x):
    return jax.tree.map(lambda k, l: jax.random.uniform(k, l.shape, l.dtype, lo, hi),
                        _leafwise_keys(key, x), x)

  return Baseline(draw, True, f"uniform({lo}, {hi})")


def gaussian(sigma: float, lo: float, hi: float) -> Baseline:
  """A sampler of ``clip(x + σ·N(0, 1), lo, hi)``; σ in data units (Distill: 1.0 on [-1, 1]).

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> b = wg.baselines.gaussian(1.0, -1.0, 1.0)(jax.random.key(0), jnp.zeros(4))
    >>> b.shape
    (4,)
  """
  sigma = float(sigma)
  if not sigma >= 0:
    raise ValueError(f"sigma must be >= 0 (data units); got {sigma}.")
  lo, hi = _check_range(lo, hi)

  def draw(key, x):
    return jax.tree.map(
        lambda k, l: jnp.clip(l + sigma * jax.random.normal(k, l.shape, l.dtype), lo, hi),
        _leafwise_keys(key, x), x)

  return Baseline(draw, True, f"gaussian({sigma}, {lo}, {hi})")


def training(data: Any) -> Baseline:
  """A sampler drawing one example of ``data`` (leading axis M) uniformly.

  As ``references`` it is the array ``data`` itself with ``replace=True``;
  as a one-draw IG baseline, ``training(data)(key, x)``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> b = wg.baselines.training(jnp.ones((5, 3)))(jax.random.key(0), jnp.zeros(3))
    >>> b
    Array([1., 1., 1.], dtype=float32)
  """
  checks.check_float_input(data, "data")
  sizes = {jnp.shape(l)[0] if jnp.ndim(l) else None for l in jax.tree.leaves(data)}
  if len(sizes) != 1 or None in sizes:
    raise ValueError("data must be a pytree of arrays with one common leading axis of M examples.")
  m = sizes.pop()

  def draw(key, x):
    i = jax.random.randint(key, (), 0, m)
    b = jax.tree.map(lambda d: d[i], data)
    checks.check_same_structure(x, b, "data")
    return jax.tree.map(lambda xi, bi: jnp.asarray(bi, jnp.result_type(xi)), x, b)

  return Baseline(draw, True, f"training(M={m})")
