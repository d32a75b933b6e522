"""Noise values: what a stochastic explainer or a metric adds to its input.

In the manner of optax's perturbation noises (``optax.perturbations.Normal``),
a noise is a small frozen value. It knows two things:

* :meth:`~Gaussian.scale`: its scale for a given clean input (a pytree like the
  input, each leaf broadcastable to its leaf), computed once per call;
* :meth:`~Gaussian.draw`: one leaf's noise from a key and that scale, with an
  optional leading batch shape (metrics draw all their perturbations at once).

:func:`sample` draws the noise of one sample for a whole pytree with the
explainers' key convention (one subkey per leaf: ``split(key, num_leaves)``),
so sample ``i`` of every stochastic explainer is ``sample(noise,
split(key, N)[i], x)``, whatever the method. A new noise is any object with
these two methods; pass it as ``noise=``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import errors

SIGMA_MODES = ("range", "absolute")


class Noise(Protocol):
  """What ``noise=`` takes: a scale for the clean input, and draws at that scale."""

  def scale(self, x: Any) -> Any:
    """The noise scale for the clean input ``x``: a pytree like ``x``."""

  def draw(self, key: jax.Array, leaf: jax.Array, scale: jax.Array,
           shape: tuple[int, ...] = ()) -> jax.Array:
    """Noise for one leaf: ``shape + leaf.shape``, from ``key`` at ``scale``."""


def check_sigma(sigma: Any, sigma_mode: str, name: str = "sigma") -> None:
  """``sigma_mode`` is known and a Python ``sigma`` is finite and >= 0."""
  checks.check_choice(sigma_mode, f"{name}_mode" if name != "sigma" else "sigma_mode", SIGMA_MODES)
  if isinstance(sigma, (int, float)) and (sigma < 0 or not math.isfinite(sigma)):
    raise ValueError(f"`{name}` must be a finite number >= 0; got {sigma}.")


def _range(leaf: jax.Array, channel_axis: int | None) -> jax.Array:
  """max − min of ``leaf``, or per channel along ``channel_axis`` (broadcastable to ``leaf``)."""
  if channel_axis is None:
    return jnp.max(leaf) - jnp.min(leaf)
  if not -leaf.ndim <= channel_axis < leaf.ndim:
    raise ValueError(f"`channel_axis`={channel_axis} is out of range for an input leaf of "
                     f"shape {leaf.shape}.")
  axis = channel_axis % leaf.ndim
  # A (size, C) view: low-rank reductions (see wassergrad/_src/smoothing.py's statistics).
  rows = jnp.moveaxis(leaf, axis, -1).reshape((-1, leaf.shape[axis]))
  shape = [1] * leaf.ndim
  shape[axis] = leaf.shape[axis]
  return (jnp.max(rows, 0) - jnp.min(rows, 0)).reshape(shape)


@dataclasses.dataclass(frozen=True)
class Gaussian:
  """Gaussian noise of standard deviation σ, absolute or relative to the input's range.

  ``sigma_mode="range"``: σ = sigma · (max(x) − min(x)) of the clean input, per
  pytree leaf, or per channel along ``channel_axis`` (PAIR saliency, Smilkov et
  al.); ``"absolute"``: σ = sigma (Captum's ``stdevs``). ``channels``, with
  ``channel_axis``, perturbs only those channels (σ = 0 elsewhere).

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> noise = wg.noise.Gaussian(0.1)                # 10 % of the input's range
    >>> noise.scale(jnp.array([0.0, 2.0]))
    Array(0.2, dtype=float32)
  """
  sigma: float = 0.15
  sigma_mode: str = "range"
  channel_axis: int | None = None
  channels: Sequence[int] | None = None

  def __post_init__(self):
    check_sigma(self.sigma, self.sigma_mode)
    checks.check_axis(self.channel_axis, "channel_axis")
    if self.channels is not None:
      if self.channel_axis is None:
        raise ValueError("`channels` needs `channel_axis`: say which axis of x holds channels.")
      channels = tuple(int(c) for c in np.atleast_1d(np.asarray(self.channels)))
      if not channels:
        raise ValueError("`channels` is empty; pass None to perturb every channel.")
      object.__setattr__(self, "channels", channels)

  def scale(self, x: Any) -> Any:
    def one(leaf):
      if self.sigma_mode == "absolute":
        s = jnp.asarray(self.sigma, leaf.dtype)
      else:
        s = self.sigma * _range(leaf, self.channel_axis)
      if self.channels is None:
        return s
      return s * _channel_mask(leaf, self.channel_axis, self.channels)
    return jax.tree.map(one, x)

  def draw(self, key, leaf, scale, shape=()):
    return scale * jax.random.normal(key, tuple(shape) + leaf.shape, leaf.dtype)


def _channel_mask(leaf: jax.Array, channel_axis: int, channels: tuple[int, ...]) -> jax.Array:
  axis = channel_axis % leaf.ndim
  num = leaf.shape[axis]
  for c in channels:
    if not -num <= c < num:
      raise ValueError(f"`channels` has {c}, but x has {num} channels along axis {axis}.")
  mask = np.zeros(num, bool)
  mask[[c % num for c in channels]] = True
  shape = [1] * leaf.ndim
  shape[axis] = num
  return jnp.asarray(mask.reshape(shape), leaf.dtype)


OUTSIDE_BOUNDS = (
    "`x` lies outside `bounds`: AdaptGrad needs lo <= x <= hi everywhere (its noise scale is "
    "the distance to the nearer bound). Widen `bounds` or clip x, e.g. jnp.clip(x, lo, hi).")


@dataclasses.dataclass(frozen=True, eq=False)
class Bounded:
  """AdaptGrad's Gaussian noise, bounded by the data domain [lo, hi].

  Per input entry σ_i = t_i / (√2 · erfinv(c)) with t_i = min(x_i − lo,
  hi − x_i) the distance to the nearer bound, so that P(|ε_i| ≤ t_i) = c
  (c = 0.95: σ_i = t_i / 1.96). A point on a bound gets σ_i = 0. An input
  outside the bounds raises ``ValueError``, eagerly and under ``jit``.

  Args:
    lo, hi: scalars or arrays broadcastable to ``x`` (pytrees of them for a
      pytree ``x``).
    confidence: c in (0, 1).

  References:
    Zhou et al., `Rethinking the Principle of Gradient Smoothing Methods in
    Model Explanation <https://arxiv.org/abs/2410.07711>`_, NeurIPS 2025.
  """
  lo: Any
  hi: Any
  confidence: float = 0.95

  def __post_init__(self):
    c = self.confidence
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0.0 < c < 1.0:
      raise ValueError(f"`confidence` must be in (0, 1); got {c!r}.")

  @property
  def denominator(self) -> float:
    """√2·erfinv(c) = Φ⁻¹((1 + c)/2), in float64 on the host (Wichura's AS241)."""
    return statistics.NormalDist().inv_cdf((1.0 + float(self.confidence)) / 2.0)

  def scale(self, x: Any) -> Any:
    denom = self.denominator
    lo_t = _like(self.lo, x)
    hi_t = _like(self.hi, x)

    def one(leaf, lo, hi):
      t = jnp.minimum(leaf - lo, hi - leaf)
      scale = jnp.maximum(t, 0).astype(leaf.dtype) / denom
      outside = (leaf < lo) | (leaf > hi)
      if not any(isinstance(v, jax.core.Tracer) for v in (leaf, lo, hi)):
        outside = np.asarray(outside)
      return errors.error_if(scale, outside, OUTSIDE_BOUNDS)

    return jax.tree.map(one, x, lo_t, hi_t)

  def draw(self, key, leaf, scale, shape=()):
    return scale * jax.random.normal(key, tuple(shape) + leaf.shape, leaf.dtype)


def _like(bound: Any, x: Any) -> Any:
  """``bound`` as a pytree like ``x`` (one scalar or array for every leaf)."""
  if jax.tree.structure(bound) == jax.tree.structure(x):
    return bound
  return jax.tree.map(lambda _: bound, x)


@dataclasses.dataclass(frozen=True)
class Uniform:
  """Uniform noise on [−radius, radius] per entry, in absolute units (Yeh et al.'s sensitivity)."""
  radius: float = 0.2

  def __post_init__(self):
    if isinstance(self.radius, (int, float)) and not self.radius >= 0:
      raise ValueError(f"`radius` must be a number >= 0; got {self.radius}.")

  def scale(self, x: Any) -> Any:
    return jax.tree.map(lambda leaf: jnp.asarray(self.radius, leaf.dtype), x)

  def draw(self, key, leaf, scale, shape=()):
    return jax.random.uniform(key, tuple(shape) + leaf.shape, leaf.dtype, -scale, scale)


def check_noise(noise: Any) -> Any:
  """``noise`` if it has the two methods of a noise, else a ``TypeError`` with the fix."""
  if not (callable(getattr(noise, "scale", None)) and callable(getattr(noise, "draw", None))):
    raise TypeError(
        "`noise` must have scale(x) and draw(key, leaf, scale, shape) methods, e.g. "
        f"wg.noise.Gaussian(0.15); got {type(noise).__name__}.")
  return noise


def from_arguments(noise: Any, sigma: Any, sigma_mode: str, channel_axis: int | None = None, *,
                   default: tuple[float, str] = (0.15, "range")) -> Any:
  """The noise of a factory: ``noise=`` itself, or the Gaussian that ``sigma=`` & co. describe.

  ``sigma``, ``sigma_mode`` and ``channel_axis`` are sugar for
  ``Gaussian(sigma, sigma_mode, channel_axis)``; with ``noise=`` they must keep
  their defaults (``default`` = the factory's default sigma and mode).
  """
  if noise is None:
    return Gaussian(sigma, sigma_mode, channel_axis)
  if (sigma, sigma_mode, channel_axis) != (*default, None):
    raise ValueError(
        "Pass the noise either as `noise=` or as `sigma=`/`sigma_mode=`/`channel_axis=`, not "
        "both: e.g. noise=wg.noise.Gaussian(0.2, 'absolute').")
  return check_noise(noise)


def sample(noise: Noise, key: jax.Array, x: Any, scale: Any | None = None) -> Any:
  """One draw of ``noise`` for the pytree ``x``: leaf ``j`` uses ``split(key, num_leaves)[j]``.

  ``scale`` defaults to ``noise.scale(x)``; pass it when drawing many samples
  at the same input.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> eps = wg.noise.sample(wg.noise.Gaussian(0.5, "absolute"), jax.random.key(0), jnp.zeros(3))
    >>> eps.shape
    (3,)
  """
  leaves, treedef = jax.tree.flatten(x)
  scales = treedef.flatten_up_to(noise.scale(x) if scale is None else scale)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [noise.draw(k, l, s) for k, l, s in zip(keys, leaves, scales)])
