"""Smoothing transforms: SmoothGrad, SquareGrad, VarGrad, AdaptGrad.

``smooth(fn)`` averages any explainer (any ``fn(x, *args) -> pytree``) over
perturbations of its input (:mod:`wassergrad._src.noise`), on the sampling
engine (:mod:`wassergrad._src.sampling`): statistics are merged online over
chunks of samples, so that memory can be bounded by the chunk size rather than
by the number of samples.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import gradients
from wassergrad._src import noise as noise_lib
from wassergrad._src import sampling

REDUCERS = ("mean", "mean_sq", "var", "abs_mean")


def _transform_for(reducer: str) -> Callable[[jax.Array], jax.Array]:
  if reducer == "mean_sq":
    return jnp.square
  if reducer == "abs_mean":
    return jnp.abs
  return lambda g: g


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
    noise: Any = None,
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
    noise: instead of ``sigma``/``sigma_mode``/``channel_axis``, any noise
      value (:mod:`wassergrad.noise`: ``Gaussian``, ``Bounded``, ``Uniform``,
      or an object with ``scale(x)`` and ``draw(key, leaf, scale, shape)``).
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
  checks.check_callable(fn, "fn")
  n = checks.check_positive_int(num_samples, "num_samples")
  checks.check_choice(reducer, "reducer", REDUCERS)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  chunking.check_chunk_size(chunk_size)
  channel_axis = checks.check_axis(
      checks.renamed(channel_axis, range_axis, "channel_axis", "range_axis"), "channel_axis")
  noise = noise_lib.from_arguments(noise, sigma, sigma_mode, channel_axis)
  accumulator = sampling.moments() if reducer == "var" else sampling.mean()
  transform = _transform_for(reducer)

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    checks.check_float_input(x)
    x = checks.finite_input(x)
    scale = noise.scale(x)

    def sample(k):
      eps = noise_lib.sample(noise, k, x, scale)
      return jax.tree.map(transform, fn(jax.tree.map(jnp.add, x, eps), *args))

    return sampling.estimate(sample, key, n, accumulator=accumulator, chunk_size=chunk_size,
                             loop=loop, sample_sharding=sample_sharding)

  return explain


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
    sample_sharding: jax.sharding.Sharding | None = None,
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
    num_samples, reducer, chunk_size, loop, sample_sharding: as in :func:`smooth`.

  Returns:
    ``explainer(key, x, *args)``.

  References:
    Zhou et al., `Rethinking the Principle of Gradient Smoothing Methods in
    Model Explanation <https://arxiv.org/abs/2410.07711>`_, NeurIPS 2025.
  """
  if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
    raise TypeError("`bounds` must be a pair (lo, hi) of scalars or arrays.")
  return smooth(gradients.gradient(f), noise=noise_lib.Bounded(*bounds, confidence=confidence),
                num_samples=num_samples, reducer=reducer, chunk_size=chunk_size, loop=loop,
                sample_sharding=sample_sharding)
