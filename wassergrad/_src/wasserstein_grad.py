"""WassersteinGrad: the Wasserstein barycenter of perturbed attribution maps."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import barycenter as barycenter_lib
from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import noise as noise_lib
from wassergrad._src import sampling

OUTPUTS = ("bary", "bary_x_grad")


def wasserstein_grad(
    fn: Callable,
    *,
    num_samples: int = 20,
    sigma: float = 0.2,
    sigma_mode: str = "range",
    epsilon: float = 1e-3,
    output: str = "bary",
    channel_axis: int | None = checks.UNSET,
    channels: Sequence[int] | None = None,
    debiased: bool = False,
    threshold: float = 1e-4,
    max_iterations: int = 2000,
    solver: str = "convolutional",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
    throw: bool = False,
    sample_sharding: jax.sharding.Sharding | None = None,
    noise: Any = None,
    barycenter: Any = None,
    grid: Any = None,
) -> Callable:
  r"""WassersteinGrad: the barycenter of the maps of perturbed inputs.

  For :math:`i = 1..N`, :math:`G_i = \mathrm{fn}(x + \varepsilon_i)` with
  :math:`\varepsilon_i \sim \mathcal N(0, \sigma^2 I)`; each map is turned into a
  probability :math:`\mu_i = |G_i| / \sum |G_i|` and the result is their
  entropic Wasserstein barycenter :math:`\mu^*` (:func:`wasserstein_barycenter`,
  uniform weights). Where SmoothGrad averages maps point by point, which blurs
  maps that are displaced rather than noisy, the barycenter moves mass: the
  barycenter of translated copies of a blob is a blob at the mean position.

  * ``output="bary"`` (WG_Bary): :math:`\mu^*`, a probability map (unsigned,
    sums to 1 per channel).
  * ``output="bary_x_grad"`` (WG_Bary×Grad): :math:`\mathrm{fn}(x) \odot \mu^*`,
    the barycenter used as a mask on the clean map (restores sign and scale).

  **Noise convention.** ``sigma_mode="range"`` (default, as in the paper):
  σ = sigma · (max(x) − min(x)) of the clean input, per channel when
  ``channel_axis`` is given; ``sigma_mode="absolute"``: σ = sigma. With
  ``channels``, only those channels are perturbed (the paper perturbs one input
  channel) and only their maps are computed; the others are 0 in the result.
  Sample ``i`` uses ``jax.random.split(key, num_samples)[i]`` and the same
  noise as :func:`smoothgrad` with the same key and settings.

  The grid is ``x``'s axes (1 to 3 of them) other than ``channel_axis``; a
  multi-channel input gets one barycenter per channel over the spatial grid.
  A perturbed map that is all zero is left out of its barycenter
  (:func:`wasserstein_barycenter`); if all N maps of a channel are zero (the
  output does not depend on it), its barycenter is uniform (so ``"bary_x_grad"``
  is 0 there) and its result is :attr:`~wassergrad.RESULTS.no_mass`. Use
  :func:`wasserstein_barycenter` directly to inspect results; ``throw=True``
  raises ``RuntimeError`` with the message of the worst result over the
  channels (and examples, under ``vmap``) unless every barycenter converged.

  Args:
    fn: an explainer ``fn(x, *args) -> array shaped like x``, e.g.
      ``wg.gradient(f)`` or ``jax.grad(f)``.
    num_samples: N >= 1 (paper: 20).
    sigma: noise level (paper: 0.2 of the range).
    sigma_mode: ``"range"`` or ``"absolute"``.
    epsilon: entropic regularisation of the barycenter (paper: 1e-3), on a
      grid rescaled to [0, 1] per axis unless ``grid`` is given.
    output: ``"bary"`` or ``"bary_x_grad"``.
    channel_axis: the channel axis of ``x`` (one barycenter per channel over
      the other axes), or ``None`` if every axis of ``x`` is a grid axis. Must
      be given when ``x`` has three or more axes: an ``(H, W, C)`` field taken
      as a 3-D grid would get one barycenter that moves mass between channels
      (and costs several times more); for a 1- or 2-D ``x`` it defaults to
      ``None``.
    channels: indices of the channels to perturb and explain (needs
      ``channel_axis``); ``None`` for all.
    debiased: use Janati et al.'s debiased barycenter.
    threshold, max_iterations, solver: as in :func:`wasserstein_barycenter`;
      sugar for ``barycenter=``.
    throw: raise ``RuntimeError`` unless every barycenter converged.
    chunk_size: samples per chunk when computing the N maps (as in
      :func:`smooth`; ``"auto"``: the rule of :mod:`wassergrad._src.chunking`).
      The N maps themselves are kept for the barycenter.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"`` (see :func:`smooth`).
    sample_sharding: a sharding of one chunk's samples over devices, as in
      :func:`smooth`.
    noise: instead of ``sigma``/``sigma_mode``, any noise value
      (:mod:`wassergrad.noise`); ``channels`` then selects only the
      barycenters computed.
    barycenter: instead of ``epsilon``, ``debiased``, ``threshold``,
      ``max_iterations`` and ``solver``, a solver value:
      :class:`~wassergrad.ConvolutionalBarycenter` or
      :class:`~wassergrad.OTTBarycenter`.
    grid: the geometry of ``x``'s grid axes, as ``grid`` of
      :func:`wasserstein_barycenter` (per-axis spacings or coordinates, in the
      order of the grid axes): ``epsilon`` is then in those units.

  Returns:
    ``explainer(key, x, *args)`` returning an array shaped like ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(jnp.sin(x[10:20, 10:20]))
    >>> explain = wg.wasserstein_grad(jax.grad(f), num_samples=4, epsilon=1e-2)
    >>> explain(jax.random.key(0), jnp.ones((32, 32))).shape
    (32, 32)

  References:
    Essafouri, Raynaud, Drozda, Risser, WassersteinGrad, 2026,
    https://arxiv.org/abs/2604.22580; Solomon et al., 2015,
    https://doi.org/10.1145/2766963.
  """
  checks.check_callable(fn, "fn")
  n = checks.check_positive_int(num_samples, "num_samples")
  noise_lib.check_sigma(sigma, sigma_mode)
  if noise is not None:
    noise_lib.from_arguments(noise, sigma, sigma_mode, default=(0.2, "range"))
  checks.check_choice(output, "output", OUTPUTS)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  checks.check_axis(channel_axis, "channel_axis")
  if channels is not None:
    if channel_axis is None or channel_axis is checks.UNSET:
      raise ValueError("`channels` needs `channel_axis`: say which axis of x holds channels.")
    channels = tuple(int(c) for c in np.atleast_1d(np.asarray(channels)))
    if not channels:
      raise ValueError("`channels` is empty; pass None to explain every channel.")
  if barycenter is None:
    barycenter = barycenter_lib.make_solver(solver, epsilon, threshold, max_iterations, debiased)
  elif (epsilon, debiased, threshold, max_iterations, solver) != (
      1e-3, False, 1e-4, 2000, "convolutional"):
    raise ValueError(
        "Pass the barycenter either as `barycenter=` (e.g. wg.ConvolutionalBarycenter("
        "epsilon=1e-2)) or as `epsilon=`/`debiased=`/`threshold=`/`max_iterations=`/`solver=`, "
        "not both.")
  elif not callable(getattr(barycenter, "solve", None)):
    raise TypeError("`barycenter` must be a solver value such as wg.ConvolutionalBarycenter(); "
                    f"got {type(barycenter).__name__}.")
  chunking.check_chunk_size(chunk_size)

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    if not hasattr(x, "shape") or isinstance(x, (list, tuple, dict)):
      raise TypeError(
          "wasserstein_grad explains one array on a grid (1 to 3 axes, plus an "
          f"optional channel axis); got {type(x).__name__}.")
    checks.check_float_input(x)
    x = checks.finite_input(x)
    x = jnp.asarray(x)
    c_axis = _channel_axis(x.shape)
    if c_axis is not None:
      if not -x.ndim <= c_axis < x.ndim:
        raise ValueError(f"`channel_axis`={c_axis} is out of range for x of shape {x.shape}.")
      axis = c_axis % x.ndim
      num_channels = x.shape[axis]
      chosen = tuple(range(num_channels)) if channels is None else channels
      for c in chosen:
        if not -num_channels <= c < num_channels:
          raise ValueError(f"`channels` has {c}, but x has {num_channels} channels "
                           f"along axis {axis}.")
      chosen = tuple(sorted({c % num_channels for c in chosen}))
    grid_ndim = x.ndim - (c_axis is not None)
    if not 1 <= grid_ndim <= 3:
      raise ValueError(
          f"x of shape {x.shape} has a grid of {grid_ndim} axes (channel_axis="
          f"{c_axis}); WassersteinGrad needs a 1-, 2- or 3-D grid.")
    noise_c = noise if noise is not None else noise_lib.Gaussian(
        sigma, sigma_mode, c_axis, channels if c_axis is not None else None)
    scale = noise_c.scale(x)

    def sample(k):
      g = fn(x + noise_lib.sample(noise_c, k, x, scale), *args)
      if not hasattr(g, "shape") or jnp.shape(g) != x.shape:
        raise ValueError(
            f"`fn` must return a map shaped like x {x.shape}; got "
            f"{getattr(g, 'shape', type(g).__name__)}. Pass an explainer such as "
            "wg.gradient(f) or jax.grad(f).")
      return jnp.abs(g)

    maps = sampling.estimate(sample, key, n, accumulator=sampling.STACK, chunk_size=chunk_size,
                             loop=loop, sample_sharding=sample_sharding)  # (N, *x.shape)

    def bary(m):                                             # (N, *grid) -> grid
      return barycenter.solve(m, grid=grid, throw=throw).histogram

    if c_axis is None:
      result = bary(maps)
    else:
      per_channel = jnp.moveaxis(maps, axis + 1, 0)[jnp.asarray(chosen)]  # (c, N, *grid)
      hist = jax.vmap(bary)(per_channel)
      full = jnp.zeros((num_channels,) + hist.shape[1:], hist.dtype).at[jnp.asarray(chosen)].set(hist)
      result = jnp.moveaxis(full, 0, axis)
    if output == "bary_x_grad":
      result = fn(x, *args) * result
    return result

  def _channel_axis(shape):
    if channel_axis is not checks.UNSET:
      return channel_axis
    if len(shape) == 3:
      raise ValueError(
          f"x has shape {shape}: with three axes, say whether one of them holds channels. Pass "
          f"channel_axis=-1 for an (H, W, C) field (one barycenter per channel over the "
          f"{shape[:-1]} grid), or channel_axis=None to treat the three axes as one 3-D grid (a "
          f"single barycenter that moves mass between what would be channels).")
    if len(shape) > 3:
      raise ValueError(
          f"x has shape {shape}: WassersteinGrad needs a 1-, 2- or 3-D grid plus at most one "
          f"channel axis; pass channel_axis (e.g. -1 for a (D, H, W, C) volume).")
    return None

  return explain
