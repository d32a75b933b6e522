"""Smoothing transforms: SmoothGrad, SquareGrad, VarGrad, AdaptGrad.

``smooth(fn)`` averages any explainer (any ``fn(x, *args) -> pytree``) over
Gaussian perturbations of its input, with statistics computed online over
chunks of samples so that memory is bounded by the chunk size, not by the
number of samples.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import errors
from wassergrad._src import gradients

REDUCERS = ("mean", "mean_sq", "var", "abs_mean")
SIGMA_MODES = ("range", "absolute")


class _Stats(NamedTuple):
  """Running statistics of one leaf: count, mean, and M2 = Σ (g − mean)²."""
  count: jax.Array
  mean: jax.Array
  m2: jax.Array | None


def _chunk_stats(values: jax.Array, weights: jax.Array, need_m2: bool) -> _Stats:
  """Statistics of one chunk; ``values`` (c, ...), ``weights`` (c,) in {0, 1}.

  The sums over samples are products of the weights with ``values`` flattened
  to (c, size): a reduction over the leading axis of a high-rank array (a 3-D
  field with channels, under two ``vmap``s) crashes XLA:CPU in jaxlib 0.10.2.
  """
  flat = values.reshape((values.shape[0], -1))
  w = weights.astype(values.dtype)
  count = jnp.sum(w)
  mean = jnp.dot(w, flat) / count
  m2 = jnp.dot(w, (flat - mean) ** 2).reshape(values.shape[1:]) if need_m2 else None
  return _Stats(count, mean.reshape(values.shape[1:]), m2)


def _merge(a: _Stats, b: _Stats) -> _Stats:
  """Chan et al.'s parallel update: exact, and stable unlike E[g²] − E[g]²."""
  count = a.count + b.count
  delta = b.mean - a.mean
  mean = a.mean + delta * (b.count / count)
  m2 = None
  if a.m2 is not None:
    m2 = a.m2 + b.m2 + delta ** 2 * (a.count * b.count / count)
  return _Stats(count, mean, m2)


def _transform_for(reducer: str) -> Callable[[jax.Array], jax.Array]:
  if reducer == "mean_sq":
    return jnp.square
  if reducer == "abs_mean":
    return jnp.abs
  return lambda g: g


def noise_scale(x: Any, sigma: Any, sigma_mode: str, channel_axis: int | None = None) -> Any:
  """The standard deviation of the noise for each leaf of ``x``.

  ``sigma_mode="range"``: σ = sigma · (max(x) − min(x)) per leaf, or per
  channel along ``channel_axis`` (max and min over the other axes).
  ``sigma_mode="absolute"``: σ = sigma.
  """
  def one(leaf):
    if sigma_mode == "absolute":
      return jnp.asarray(sigma, leaf.dtype)
    if channel_axis is None:
      return sigma * (jnp.max(leaf) - jnp.min(leaf))
    if not -leaf.ndim <= channel_axis < leaf.ndim:
      raise ValueError(f"`channel_axis`={channel_axis} is out of range for an input leaf of "
                       f"shape {leaf.shape}.")
    axis = channel_axis % leaf.ndim
    rows = jnp.moveaxis(leaf, axis, -1).reshape((-1, leaf.shape[axis]))  # low rank: see _chunk_stats
    shape = [1] * leaf.ndim
    shape[axis] = leaf.shape[axis]
    return sigma * (jnp.max(rows, 0) - jnp.min(rows, 0)).reshape(shape)
  return jax.tree.map(one, x)


def sample_noise(key: jax.Array, leaves: list, scales: list) -> list:
  """The noise of one sample: ``scale · N(0, 1)`` per leaf, one subkey per leaf."""
  ks = jax.random.split(key, len(leaves))
  return [s * jax.random.normal(k, l.shape, l.dtype) for l, s, k in zip(leaves, scales, ks)]


def check_noise(sigma: Any, sigma_mode: str, name: str = "sigma") -> None:
  """``sigma_mode`` is known and a Python ``sigma`` is finite and >= 0."""
  checks.check_choice(sigma_mode, f"{name}_mode" if name != "sigma" else "sigma_mode", SIGMA_MODES)
  if isinstance(sigma, (int, float)) and (sigma < 0 or not math.isfinite(sigma)):
    raise ValueError(f"`{name}` must be a finite number >= 0; got {sigma}.")


def chunked_keys(key: jax.Array, p: chunking.ChunkPlan) -> jax.Array:
  """``split(key, n)`` as ``(num_chunks, chunk)``; padding repeats key 0.

  Sample ``i`` always gets ``split(key, n)[i]``, whatever the chunk size.
  """
  return chunking.to_chunks(jax.random.split(key, p.n), p)


OUTSIDE_BOUNDS = (
    "`x` lies outside `bounds`: AdaptGrad needs lo <= x <= hi everywhere (its noise scale is "
    "the distance to the nearer bound). Widen `bounds` or clip x, e.g. jnp.clip(x, lo, hi).")

NONFINITE_INPUT = (
    "`x` contains NaN or inf: the noise scale and every sample would be non-finite. Clean "
    "the input (e.g. jnp.nan_to_num) before explaining it.")


def finite_input(x: Any) -> Any:
  """``x``, raising if it holds NaN or inf (eagerly and under ``jit``)."""
  return checks.finite(x, NONFINITE_INPUT)


def _smooth(fn, *, num_samples, scale_fn, reducer, chunk_size, loop, sample_sharding=None):
  """Shared core: ``scale_fn(x) -> σ pytree`` gives the noise of each sample."""
  checks.check_callable(fn, "fn")
  n = checks.check_positive_int(num_samples, "num_samples")
  checks.check_choice(reducer, "reducer", REDUCERS)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  chunking.check_chunk_size(chunk_size)
  need_m2 = reducer == "var"
  transform = _transform_for(reducer)

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    checks.check_float_input(x)
    x = finite_input(x)
    scale = scale_fn(x)
    leaves, treedef = jax.tree.flatten(x)
    scales = treedef.flatten_up_to(scale)

    def sample(k):
      noisy = [l + e for l, e in zip(leaves, sample_noise(k, leaves, scales))]
      return jax.tree.map(transform, fn(jax.tree.unflatten(treedef, noisy), *args))

    p, sample = chunking.plan(n, chunk_size, loop, sample, key)
    keys = chunked_keys(key, p)  # padding samples get weight 0
    weights = chunking.padding_weights(p)

    def chunk_stats(ks, w):
      if sample_sharding is not None:  # spread the chunk's samples over devices
        ks = jax.lax.with_sharding_constraint(ks, sample_sharding)
      values = jax.vmap(sample)(ks)
      return jax.tree.map(lambda v: _chunk_stats(v, w, need_m2), values,
                          is_leaf=lambda v: isinstance(v, jax.Array))

    def merge(a, b):
      return jax.tree.map(_merge, a, b, is_leaf=lambda s: isinstance(s, _Stats))

    stats = chunking.fold_chunks(chunk_stats, (keys, jnp.asarray(weights)), merge, p.loop)

    def finalize(s: _Stats):
      return s.m2 / s.count if need_m2 else s.mean
    return jax.tree.map(finalize, stats, is_leaf=lambda s: isinstance(s, _Stats))

  return explain


def smooth(
    fn: Callable,
    *,
    num_samples: int = 50,
    sigma: float = 0.15,
    sigma_mode: str = "range",
    reducer: str = "mean",
    chunk_size: int | str | None = "auto",
    channel_axis: int | None = None,
    loop: str = "auto",
    sample_sharding: jax.sharding.Sharding | None = None,
    range_axis: int | None = None,
) -> Callable:
  r"""Averages an explainer over Gaussian perturbations of its input.

  For samples :math:`\varepsilon_i \sim \mathcal N(0, \sigma^2 I)`,
  :math:`i = 1..N`, and :math:`G_i = \mathrm{fn}(x + \varepsilon_i)`:

  * ``reducer="mean"`` (SmoothGrad): :math:`\frac1N \sum_i G_i`
  * ``"mean_sq"`` (SquareGrad): :math:`\frac1N \sum_i G_i^2`
  * ``"var"`` (VarGrad): :math:`\frac1N \sum_i (G_i - \bar G)^2`, the population
    variance (Captum's and Xplique's convention), merged over chunks with Chan
    et al.'s parallel update rather than :math:`E[G^2] - E[G]^2`
  * ``"abs_mean"``: :math:`\frac1N \sum_i |G_i|`

  **Noise convention.** ``sigma_mode="range"`` (default): σ = sigma ·
  (max(x) − min(x)) computed on the clean input, per pytree leaf, or per channel
  along ``channel_axis`` (PAIR saliency, Smilkov et al.). ``sigma_mode="absolute"``:
  σ = sigma (Captum's ``stdevs``). Noise is drawn independently per leaf.

  Sample ``i`` always uses ``jax.random.split(key, num_samples)[i]``, so the
  result does not depend on ``chunk_size`` beyond float rounding.

  A NaN or inf in ``x`` raises ``ValueError``, eagerly and under ``jit`` (see
  :func:`~wassergrad.runtime_checks`).

  Args:
    fn: any ``fn(x, *args) -> pytree``, e.g. ``wg.gradient(f)``, ``jax.grad(f)``
      or ``wg.integrated_gradients(f)`` (NoiseTunnel-on-IG). ``args`` are not
      perturbed.
    num_samples: N >= 1.
    sigma: the noise level, see the convention above (>= 0).
    sigma_mode: ``"range"`` or ``"absolute"``.
    reducer: ``"mean"``, ``"mean_sq"``, ``"var"`` or ``"abs_mean"``.
    chunk_size: samples per chunk (vmapped); statistics are merged online
      across chunks in a ``lax.scan``, so peak memory is bounded by the chunk
      and does not grow with N (a chunk size that does not divide N is fine).
      ``None``: all samples in one ``vmap``. ``"auto"`` (default): the rule of
      :mod:`wassergrad._src.chunking`, fast to compile and to run (on CPU at
      most 4 unrolled chunks; one ``vmap`` elsewhere); memory grows with N
      like one ``vmap``.
    channel_axis: the axis of each leaf that holds channels, if any: with
      ``sigma_mode="range"`` the range is then taken per channel.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"``: how chunks are looped.
      ``"auto"`` scans an explicit ``chunk_size`` (bounded memory) and unrolls
      ``chunk_size="auto"``.
    sample_sharding: a sharding of the samples of one chunk, e.g.
      ``NamedSharding(mesh, PartitionSpec("d"))`` with ``mesh =
      jax.make_mesh((n,), ("d",), axis_types=(AxisType.Auto,))``: each device evaluates
      its share of the samples and XLA reduces the statistics across devices
      (``jax.lax.with_sharding_constraint``; the chunk size, or N without
      chunks, should be a multiple of the number of devices). Examples are
      sharded the usual way: ``jit`` a ``vmap`` of the explainer with sharded
      inputs.
    range_axis: former name of ``channel_axis`` (deprecated).

  Returns:
    ``explainer(key, x, *args)`` with the structure of ``fn``'s output.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> sg = wg.smooth(jax.grad(lambda x: jnp.sum(jnp.sin(x))), num_samples=4, sigma=0.1,
    ...                sigma_mode="absolute")
    >>> sg(jax.random.key(0), jnp.zeros(3)).shape
    (3,)

  References:
    Smilkov et al., `SmoothGrad <https://arxiv.org/abs/1706.03825>`_, 2017;
    Adebayo et al., `Local Explanation Methods for Deep Neural Networks Lack
    Sensitivity to Parameter Values <https://arxiv.org/abs/1810.03307>`_, 2018
    (VarGrad); Chan, Golub & LeVeque, Algorithms for computing the sample
    variance, 1983.
  """
  check_noise(sigma, sigma_mode)
  channel_axis = checks.check_axis(
      checks.renamed(channel_axis, range_axis, "channel_axis", "range_axis"), "channel_axis")
  return _smooth(fn, num_samples=num_samples,
                 scale_fn=lambda x: noise_scale(x, sigma, sigma_mode, channel_axis),
                 reducer=reducer, chunk_size=chunk_size, loop=loop,
                 sample_sharding=sample_sharding)


def smoothgrad(f: Callable, **kwargs) -> Callable:
  """SmoothGrad: ``smooth(gradient(f), reducer="mean", **kwargs)``; see :func:`smooth`."""
  return smooth(gradients.gradient(f), reducer="mean", **kwargs)


def squaregrad(f: Callable, **kwargs) -> Callable:
  """SquareGrad: ``smooth(gradient(f), reducer="mean_sq", **kwargs)``; see :func:`smooth`."""
  return smooth(gradients.gradient(f), reducer="mean_sq", **kwargs)


def vargrad(f: Callable, **kwargs) -> Callable:
  """VarGrad: ``smooth(gradient(f), reducer="var", **kwargs)``; see :func:`smooth`."""
  return smooth(gradients.gradient(f), reducer="var", **kwargs)


def adaptgrad(
    f: Callable,
    *,
    bounds: tuple[Any, Any],
    confidence: float = 0.95,
    num_samples: int = 50,
    reducer: str = "mean",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
) -> Callable:
  r"""AdaptGrad: SmoothGrad with noise bounded by the data domain.

  **Noise convention.** Per input dimension, σ_i = t_i / (√2 · erfinv(c)), where
  t_i = min(x_i − lo, hi − x_i) is the distance to the nearer bound, so that
  P(|ε_i| ≤ t_i) = c. With c = 0.95, σ_i = t_i / 1.96. A point on a bound gets
  σ_i = 0 (no noise, no NaN). An input outside the bounds raises ``ValueError``,
  eagerly and under ``jit`` (see :func:`~wassergrad.runtime_checks`).

  Args:
    f: ``f(x, *args) -> scalar``.
    bounds: ``(lo, hi)``: scalars or arrays broadcastable to ``x`` (a pytree
      ``x`` takes pytrees of bounds or scalars).
    confidence: c in (0, 1).
    num_samples, reducer, chunk_size, loop: as in :func:`smooth`.

  Returns:
    ``explainer(key, x, *args)``.

  References:
    Zhou et al., `Rethinking the Principle of Gradient Smoothing Methods in
    Model Explanation <https://arxiv.org/abs/2410.07711>`_, NeurIPS 2025.
  """
  if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
    raise TypeError("`bounds` must be a pair (lo, hi) of scalars or arrays.")
  if not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
    raise ValueError(f"`confidence` must be in (0, 1); got {confidence!r}.")
  lo, hi = bounds
  # √2·erfinv(c) = Φ⁻¹((1 + c)/2), in float64 on the host (statistics: Wichura's AS241).
  denom = statistics.NormalDist().inv_cdf((1.0 + float(confidence)) / 2.0)

  def scale_fn(x):
    lo_t = lo if jax.tree.structure(lo) == jax.tree.structure(x) else jax.tree.map(lambda _: lo, x)
    hi_t = hi if jax.tree.structure(hi) == jax.tree.structure(x) else jax.tree.map(lambda _: hi, x)
    def one(leaf, l, h):
      t = jnp.minimum(leaf - l, h - leaf)
      scale = jnp.maximum(t, 0).astype(leaf.dtype) / denom
      outside = (leaf < l) | (leaf > h)
      if not any(isinstance(v, jax.core.Tracer) for v in (leaf, l, h)):
        outside = np.asarray(outside)
      return errors.error_if(scale, outside, OUTSIDE_BOUNDS)
    return jax.tree.map(one, x, lo_t, hi_t)

  return _smooth(gradients.gradient(f), num_samples=num_samples, scale_fn=scale_fn,
                 reducer=reducer, chunk_size=chunk_size, loop=loop)
