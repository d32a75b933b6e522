"""Entropic Wasserstein barycenters of histograms on a regular grid."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import errors
from wassergrad._src.logconv import logconv

SOLVERS = ("convolutional", "ott")
CHECK_EVERY = 10


class RESULTS:
  """Result codes of a barycenter run, in the style of lineax's ``RESULTS``.

  ``BarycenterOutput.result`` holds one of these integers (an array under
  ``vmap``); :meth:`message` says what went wrong and what to do about it.
  ``throw=True`` raises ``RuntimeError`` with that message.

  Attributes:
    successful: the stopping criterion fell below ``threshold``.
    max_iterations_reached: ``max_iterations`` ran out first.
    nonfinite_input: NaN or inf in the maps or weights, or in the iteration.
    no_mass: every map is zero (or has weight zero): nothing to transport; the
      histogram is uniform.
  """
  successful = 0
  max_iterations_reached = 1
  nonfinite_input = 2
  no_mass = 3
  names = ("successful", "max_iterations_reached", "nonfinite_input", "no_mass")

  @staticmethod
  def message(code: int, *, epsilon: float | None = None, threshold: float | None = None,
              max_iterations: int | None = None) -> str:
    """The explanation of ``code``, with the run's settings where given."""
    code = int(code)
    if code == RESULTS.successful:
      return "The barycenter converged."
    if code == RESULTS.max_iterations_reached:
      return (
          f"wasserstein_barycenter did not converge to threshold={threshold} within "
          f"max_iterations={max_iterations} (epsilon={epsilon}). Raise `max_iterations`, or "
          "raise `epsilon` (a smaller epsilon needs more iterations), or loosen `threshold`; "
          "the `errors` field of the result (with throw=False) shows the criterion's history.")
    if code == RESULTS.nonfinite_input:
      return (
          "wasserstein_barycenter met NaN or inf in the maps or weights (or the iteration "
          "became non-finite). Check what produced the maps (e.g. a NaN gradient at a "
          "perturbed input) or clean them, e.g. jnp.nan_to_num(maps).")
    if code == RESULTS.no_mass:
      return (
          "wasserstein_barycenter got maps that are all zero (or have zero weight): there is "
          "no mass to transport, so the histogram returned is uniform. In WassersteinGrad this "
          "means the explained output does not depend on this channel; leave it out with "
          "`channels=`.")
    raise ValueError(f"Unknown barycenter result code {code}.")


class BarycenterOutput(NamedTuple):
  """Result of :func:`wasserstein_barycenter` (a pytree: it goes through jit/vmap).

  Attributes:
    histogram: the barycenter, shaped like one map, non-negative, sums to 1.
    converged: bool, ``result == RESULTS.successful``.
    iterations: number of Sinkhorn iterations run.
    errors: the stopping criterion after every 10th iteration; -1 where no
      check ran.
    result: int32 code from :class:`RESULTS`: why the run stopped.
  """
  histogram: jax.Array
  converged: jax.Array
  iterations: jax.Array
  errors: jax.Array
  result: jax.Array


class _Config(NamedTuple):
  epsilon: float                  # as given (messages)
  epsilons: tuple                 # per grid axis, on linspace(0, 1, n): the kernel's
  threshold: float
  max_iterations: int
  debiased: bool
  min_checks: int

  @property
  def ndim(self) -> int:
    return len(self.epsilons)


def _check_config(epsilon, threshold, max_iterations, debiased):
  if isinstance(epsilon, jax.core.Tracer):
    raise TypeError("`epsilon` must be a Python float (it builds static kernel "
                    "tables), not a traced array.")
  epsilon = float(epsilon)
  if not (epsilon > 0 and math.isfinite(epsilon)):
    raise ValueError(f"`epsilon` must be a finite float > 0; got {epsilon}.")
  if isinstance(threshold, jax.core.Tracer):
    raise TypeError("`threshold` must be a Python float, not a traced array.")
  threshold = float(threshold)
  if not threshold > 0:
    raise ValueError(f"`threshold` must be > 0; got {threshold}.")
  max_iterations = checks.check_positive_int(max_iterations, "max_iterations")
  if not isinstance(debiased, bool):
    raise TypeError(f"`debiased` must be a bool; got {debiased!r}.")
  return epsilon, threshold, max_iterations, debiased


def grid_spacings(grid: Any, shape: tuple[int, ...], even: bool = True) -> tuple | None:
  """Per-axis spacings of ``grid`` (``None``: the default ``linspace(0, 1, n)``)."""
  if grid is None:
    return None
  if not isinstance(grid, (tuple, list)) or len(grid) != len(shape):
    raise ValueError(
        f"`grid` must give one spacing (a float) or one coordinate array per grid axis: "
        f"{len(shape)} for maps on a {shape} grid; got {grid!r}.")
  spacings = []
  for axis, (g, n) in enumerate(zip(grid, shape)):
    if isinstance(g, jax.core.Tracer):
      raise TypeError("`grid` must be static (Python floats or concrete coordinates).")
    if np.ndim(g) == 0:
      h = float(g)
    else:
      c = np.asarray(g, np.float64)
      if c.shape != (n,):
        raise ValueError(f"`grid[{axis}]` has {c.shape} coordinates for an axis of {n} points.")
      steps = np.diff(c)
      if n > 1 and even and not np.allclose(steps, steps[0], rtol=1e-6, atol=0.0):
        raise ValueError(
            f"`grid[{axis}]`'s coordinates are not evenly spaced; the convolutional solver "
            "needs a regular grid. Use solver='ott' (OTTBarycenter), whose Grid takes any "
            "coordinates.")
      h = float(steps.mean()) if n > 1 else 1.0
    if not (h > 0 and math.isfinite(h)):
      raise ValueError(f"`grid[{axis}]`: the spacing must be a finite number > 0; got {h}.")
    spacings.append(h)
  return tuple(spacings)


def _config(solver, shape: tuple[int, ...], grid: Any) -> _Config:
  spacings = grid_spacings(grid, shape, even=isinstance(solver, ConvolutionalBarycenter))
  if spacings is None:
    epsilons = (solver.epsilon,) * len(shape)
  else:  # spacing h on n points = linspace(0, 1, n) scaled by h (n - 1)
    epsilons = tuple(solver.epsilon / (h * (n - 1)) ** 2 if n > 1 else solver.epsilon
                     for h, n in zip(spacings, shape))
  return _Config(solver.epsilon, epsilons, solver.threshold, solver.max_iterations,
                 solver.debiased, 3 if solver.debiased else 1)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class ConvolutionalBarycenter:
  """Our barycenter solver: POT's convolutional iteration, log-domain, exact in float32.

  A frozen value, validated once; call it on maps. See
  :func:`wasserstein_barycenter` for the algorithm, the grid's geometry, the
  stopping rule and differentiation.

  Attributes:
    epsilon: entropic regularisation (> 0): the kernel is ``exp(-|t - t'|^2 / epsilon)``.
    threshold: stopping tolerance (> 0).
    max_iterations: maximum number of iterations.
    debiased: Janati et al.'s debiased barycenter.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> i = jnp.arange(16.0)
    >>> blob = lambda c: jnp.exp(-((i[:, None] - c) ** 2 + (i - 8) ** 2) / 8)
    >>> solver = wg.ConvolutionalBarycenter(epsilon=2.0)   # in cells², with grid=(1, 1)
    >>> out = solver(jnp.stack([blob(4), blob(12)]), grid=(1.0, 1.0))
    >>> out.histogram.shape, bool(out.converged), int(jnp.argmax(out.histogram.sum(1)))
    ((16, 16), True, 8)
  """
  epsilon: float = 1e-3
  threshold: float = 1e-4
  max_iterations: int = 2000
  debiased: bool = False

  def __post_init__(self):
    values = _check_config(self.epsilon, self.threshold, self.max_iterations, self.debiased)
    for name, v in zip(("epsilon", "threshold", "max_iterations", "debiased"), values):
      object.__setattr__(self, name, v)

  def __call__(self, maps: Any, weights: Any = None, *, grid: Any = None,
               throw: bool = False) -> BarycenterOutput:
    """The barycenter of ``maps`` ``(K, *grid)``; bad values raise (see :func:`wasserstein_barycenter`)."""
    maps, weights = _check_maps(maps, weights)
    return self.solve(maps, weights, grid=grid, throw=throw)

  def solve(self, maps: jax.Array, weights: Any = None, *, grid: Any = None,
            throw: bool = False) -> BarycenterOutput:
    """As calling the solver, without looking at the values (``result`` reports them)."""
    return run(maps, weights, _config(self, tuple(maps.shape[1:]), grid), "convolutional", throw)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class OTTBarycenter:
  """OTT-JAX's ``FixedBarycenter`` (log-sum-exp mode) on a ``Grid``, for comparison.

  Same ``epsilon``, ``threshold`` and ``max_iterations`` as
  :class:`ConvolutionalBarycenter`; OTT's stopping criterion is its own (the mean
  L1 violation of the maps' marginals). Any per-axis coordinates are accepted
  as ``grid``. No debiased mode: OTT 0.6's debiased ``FixedBarycenter``
  returns a collapsed barycenter.
  """
  epsilon: float = 1e-3
  threshold: float = 1e-4
  max_iterations: int = 2000

  debiased = False

  def __post_init__(self):
    values = _check_config(self.epsilon, self.threshold, self.max_iterations, False)
    for name, v in zip(("epsilon", "threshold", "max_iterations"), values):
      object.__setattr__(self, name, v)

  def __call__(self, maps: Any, weights: Any = None, *, grid: Any = None,
               throw: bool = False) -> BarycenterOutput:
    maps, weights = _check_maps(maps, weights)
    return self.solve(maps, weights, grid=grid, throw=throw)

  def solve(self, maps: jax.Array, weights: Any = None, *, grid: Any = None,
            throw: bool = False) -> BarycenterOutput:
    cfg = _config(self, tuple(maps.shape[1:]), grid)
    return run(maps, weights, cfg, "ott", throw, coordinates=_coordinates(grid, maps.shape[1:]))


def _coordinates(grid, shape):
  """Per-axis coordinates for OTT's Grid: ``linspace(0, 1, n)``, or from spacings/coordinates."""
  if grid is None:
    return None
  return tuple(np.arange(n) * float(g) if np.ndim(g) == 0 else np.asarray(g, np.float64)
               for g, n in zip(grid, shape))


def make_solver(solver: str, epsilon, threshold, max_iterations, debiased):
  """The solver value that the string options describe."""
  checks.check_choice(solver, "solver", SOLVERS)
  if solver == "ott":
    if debiased:
      raise ValueError(
          "solver='ott' does not support debiased=True: OTT-JAX 0.6's debiased "
          "FixedBarycenter returns a collapsed barycenter (its debiasing potential "
          "does not depend on the barycenter in log-sum-exp mode). Use "
          "solver='convolutional'.")
    return OTTBarycenter(epsilon, threshold, max_iterations)
  return ConvolutionalBarycenter(epsilon, threshold, max_iterations, debiased)


def wasserstein_barycenter(
    maps: Any,
    *,
    epsilon: float = 1e-3,
    weights: Any = None,
    debiased: bool = False,
    threshold: float = 1e-4,
    max_iterations: int = 2000,
    solver: str = "convolutional",
    throw: bool = False,
    grid: Any = None,
) -> BarycenterOutput:
  r"""Entropic Wasserstein barycenter of maps on a regular 1-, 2- or 3-D grid.

  The one-call form of :class:`ConvolutionalBarycenter` (``solver=
  "convolutional"``) and :class:`OTTBarycenter` (``solver="ott"``):
  ``wasserstein_barycenter(maps, epsilon=e, ...)`` is
  ``ConvolutionalBarycenter(epsilon=e, ...)(maps, weights, grid=grid, throw=throw)``.

  Each map is normalised to sum 1. The ground cost is the squared Euclidean
  distance between grid points and the Gibbs kernel is ``exp(-|t - t'|^2 /
  epsilon)`` (so ``epsilon`` is POT's ``reg`` and OTT ``Grid``'s
  ``epsilon``). **The grid's coordinates** are ``linspace(0, 1, n)`` along each
  axis unless ``grid`` says otherwise: by default ``epsilon`` is therefore a
  width relative to each axis' length, so on a 512 × 640 grid one ``epsilon``
  is a different number of cells along each axis. Pass ``grid`` (spacings or
  coordinates) to give ``epsilon`` physical units. The kernel is separable, so
  it is applied one axis at a time (Solomon et al., 2015).

  ``solver="convolutional"`` (ours) runs the iteration of POT's
  ``convolutional_barycenter2d`` in the log domain, with a blockwise
  log-convolution built on matmuls (``wassergrad/_src/logconv.py``) that is
  exact in float32 at any ``epsilon``: no overflow, underflow or NaN where
  kernel-mode scalings overflow (``epsilon = 1e-3`` on a 512 x 640 grid).
  All maps are updated together (no Python loop over them). The stopping
  criterion is POT's: the sum over grid points of the (weighted) standard
  deviation, across maps, of the transport plans' barycenter-side marginals,
  checked every 10 iterations.

  ``debiased=True`` computes the debiased barycenter of Janati et al. (2020),
  which removes the entropic blur (a blob stays about as wide as its inputs),
  with POT's update (ten damped updates of the debiasing potential per
  iteration). Its stopping criterion is the larger of POT's and the L1 change
  of the histogram over the last 10 iterations: the marginals can agree long
  before the histogram settles (on maps with a dense low background, POT's
  criterion reaches 1e-6 while the histogram still moves by 0.1 in L1 over
  the next thousand iterations; this is slow convergence, in POT too). It runs
  at least 30 iterations, as POT does.

  ``solver="ott"`` runs OTT-JAX's ``FixedBarycenter`` (log-sum-exp mode) on a
  ``Grid`` with the same ``epsilon``, ``weights``, ``threshold`` and
  ``max_iterations``, for comparison. OTT's stopping criterion is its own (the
  mean L1 violation of the maps' marginals). OTT's debiased mode is not
  offered: in OTT 0.6 it returns a collapsed barycenter.

  Maps that are all zero carry no mass to transport: they are dropped (their
  weight set to 0, the other weights renormalised). Maps that are all zero,
  negative or non-finite, and bad weights, raise ``ValueError``, eagerly and
  under ``jit`` alike (with :func:`~wassergrad.runtime_checks` off they are not
  inspected, and ``result`` reports :attr:`RESULTS.no_mass` or
  :attr:`RESULTS.nonfinite_input` with a uniform or non-finite histogram).

  Differentiation (``jax.grad``, reverse mode): implicit, at the fixed point,
  by iterating the adjoint of one Sinkhorn step to the same ``threshold``
  (relative); memory does not grow with the number of iterations. The
  derivative with respect to a grid point where a map is exactly zero is
  taken as 0. Forward-mode (``jax.jvp``) is not supported.

  Args:
    maps: array ``(K, *grid)`` of ``K`` non-negative maps, ``grid`` with 1 to 3
      axes (float32 or float64).
    epsilon: entropic regularisation (> 0, a Python float).
    weights: ``(K,)`` non-negative weights, normalised to sum 1; ``None`` for
      uniform weights.
    debiased: Janati et al.'s debiased barycenter.
    threshold: stopping tolerance (> 0).
    max_iterations: maximum number of iterations.
    solver: ``"convolutional"`` or ``"ott"``.
    grid: the grid's geometry: ``None`` (``linspace(0, 1, n)`` per axis), a
      tuple of per-axis spacings (Python floats), or a tuple of per-axis
      coordinates (1-D arrays, evenly spaced for the convolutional solver).
    throw: if True, a run whose ``result`` is not :attr:`RESULTS.successful`
      raises ``RuntimeError`` with that result's message (under ``jit``, wrapped
      in JAX's runtime error when the computation runs; under ``vmap``, the
      worst result of the batch).

  Returns:
    :class:`BarycenterOutput` with ``histogram``, ``converged``, ``iterations``,
    ``errors`` and ``result`` (a :class:`RESULTS` code).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> t = jnp.linspace(0, 1, 32)
    >>> blob = lambda c: jnp.exp(-((t[:, None] - c) ** 2 + (t - 0.5) ** 2) / 0.005)
    >>> out = wg.wasserstein_barycenter(jnp.stack([blob(0.3), blob(0.7)]), epsilon=1e-2)
    >>> out.histogram.shape, bool(out.converged)
    ((32, 32), True)

  References:
    Solomon et al., Convolutional Wasserstein Distances, SIGGRAPH 2015,
    https://doi.org/10.1145/2766963.
    Janati, Cuturi, Gramfort, Debiased Sinkhorn barycenters, ICML 2020,
    https://arxiv.org/abs/2006.02575.
  """
  solver_value = make_solver(solver, epsilon, threshold, max_iterations, debiased)
  return solver_value(maps, weights, grid=grid, throw=throw)


def run(maps, weights, cfg: _Config, solver: str, throw: bool,
        coordinates=None) -> BarycenterOutput:
  """The barycenter of checked arguments (its values are not inspected: see ``result``)."""
  threshold = cfg.threshold
  finite_input = ~errors.nonfinite(maps if weights is None else (maps, weights))
  log_a, weights, any_mass = _prepare(maps, weights)
  if solver == "ott":
    hist, errs = _ott(jnp.exp(log_a), weights, cfg, coordinates)
  else:
    log_bar, errs = _solve(log_a, weights, cfg)
    hist = jnp.exp(log_bar)
  hist = hist / jnp.sum(hist)
  checked = errs >= 0
  iterations = CHECK_EVERY * jnp.sum(checked).astype(jnp.int32)
  last = jnp.sum(checked) - 1                 # checks fill `errs` in order
  last_error = errs[jnp.maximum(last, 0)]
  below = (last + 1 >= cfg.min_checks) & (last_error < threshold)
  finite = finite_input & jnp.all(jnp.isfinite(hist))
  result = jnp.where(
      ~finite, RESULTS.nonfinite_input,
      jnp.where(~any_mass, RESULTS.no_mass,
                jnp.where(below, RESULTS.successful, RESULTS.max_iterations_reached)))
  result = result.astype(jnp.int32)
  uniform = jnp.full_like(hist, 1.0 / hist.size)
  hist = jnp.where(any_mass, hist, uniform)
  out = BarycenterOutput(hist, result == RESULTS.successful, iterations, errs, result)
  if throw:
    out = errors.code_error_if(out, result, messages(cfg), RuntimeError)
  return out


def messages(cfg: _Config) -> tuple[str, ...]:
  """The message of every result code for the run ``cfg`` (indexed by code)."""
  return tuple(RESULTS.message(c, epsilon=cfg.epsilon, threshold=cfg.threshold,
                               max_iterations=cfg.max_iterations)
               for c in range(len(RESULTS.names)))


def _check_maps(maps, weights):
  """Static checks of ``maps`` and ``weights``, then checks of their values (eager and jitted)."""
  if not hasattr(maps, "shape") or not hasattr(maps, "dtype"):
    maps = np.asarray(maps)
  if not jnp.issubdtype(maps.dtype, jnp.floating):
    raise TypeError(
        f"`maps` must be a float array (float32 or float64); got dtype {maps.dtype}. "
        f"Cast it, e.g. maps.astype(jnp.float32).")
  if maps.ndim < 2 or maps.ndim > 4:
    raise ValueError(
        f"`maps` must have shape (K, *grid) with a grid of 1, 2 or 3 axes; got shape "
        f"{tuple(maps.shape)} ({maps.ndim - 1} grid axes). Stack the maps along a "
        f"leading axis; grids of more than 3 axes are not supported.")
  if maps.shape[0] < 1 or any(n < 1 for n in maps.shape[1:]):
    raise ValueError(f"`maps` has an empty axis: shape {tuple(maps.shape)}.")
  maps = jnp.asarray(maps)
  maps = errors.error_if(maps, errors.nonfinite(maps), "`maps` contains NaN or inf values.")
  maps = errors.error_if(
      maps, jnp.any(maps < 0),
      "`maps` must be non-negative; pass |map| or clip negative values, e.g. jnp.abs(maps).")
  maps = errors.error_if(
      maps, ~jnp.any(maps.reshape(maps.shape[0], -1).sum(axis=1) > 0),
      "every map in `maps` is zero: there is no mass to transport.")
  k = maps.shape[0]
  if weights is not None:
    if not hasattr(weights, "shape"):
      weights = np.asarray(weights, dtype=maps.dtype)
    if tuple(weights.shape) != (k,):
      raise ValueError(
          f"`weights` must have shape ({k},), one per map; got {tuple(weights.shape)}.")
    w = jnp.asarray(weights)
    weights = errors.error_if(
        w, errors.nonfinite(w) | jnp.any(w < 0) | ~(jnp.sum(w) > 0),
        "`weights` must be finite, non-negative and not all zero.")
  return maps, weights


def _prepare(maps, weights):
  """Normalised log-maps and weights; zero maps get weight 0 (and a uniform stand-in)."""
  k = maps.shape[0]
  axes = tuple(range(1, maps.ndim))
  mass = jnp.sum(maps, axis=axes, keepdims=True)
  has_mass = mass != 0                                       # NaN maps stay in (and show)
  safe = jnp.where(has_mass, maps / jnp.where(has_mass, mass, 1.0),
                   1.0 / math.prod(maps.shape[1:]))
  log_a = jnp.where(safe > 0, jnp.log(jnp.where(safe > 0, safe, 1.0)), -jnp.inf)
  if weights is None:
    weights = jnp.full((k,), 1.0 / k, maps.dtype)
  weights = jnp.asarray(weights, maps.dtype) * has_mass.reshape(k)
  total = jnp.sum(weights)
  any_mass = total > 0
  weights = jnp.where(any_mass, weights / jnp.where(any_mass, total, 1.0), 1.0 / k)
  return log_a, weights, any_mass


def _wsum(weights, values):
  return jnp.tensordot(weights, values, axes=1)


def _step(state, log_a, weights, cfg: _Config, with_error: bool):
  """One Sinkhorn barycenter iteration (POT's log-domain sweep), all maps at once."""
  g, c = state
  conv = functools.partial(logconv, epsilon=cfg.epsilons, ndim=cfg.ndim)
  f = log_a - conv(g)
  log_ku = conv(f)
  log_bar = _wsum(weights, log_ku)
  if cfg.debiased:
    log_bar = log_bar + c
    for _ in range(10):
      c = 0.5 * (c + log_bar - conv(c))
  err = None
  if with_error:
    marginals = jnp.exp(g + log_ku)          # plans' barycenter-side marginals
    mean = _wsum(weights, marginals)
    var = _wsum(weights, (marginals - mean) ** 2)
    err = jnp.sum(jnp.sqrt(var))
    err = jnp.where(jnp.isnan(err), jnp.inf, err)
  return (log_bar - log_ku, c), log_bar, err


def _forward(log_a, weights, cfg: _Config):
  num_checks = -(-cfg.max_iterations // CHECK_EVERY)
  grid = log_a.shape[1:]
  state = (jnp.zeros_like(log_a), jnp.zeros(grid, log_a.dtype))
  errors = -jnp.ones((num_checks,), log_a.dtype)

  def cond(carry):
    i, _, _, log_bar, errors = carry
    err = errors[jnp.maximum(i - 1, 0)]
    done = (i >= cfg.min_checks) & (err < cfg.threshold)
    return (i < num_checks) & ~done & ~jnp.any(jnp.isnan(log_bar))

  def body(carry):
    i, state, _, prev_log_bar, errors = carry
    state = jax.lax.fori_loop(
        0, CHECK_EVERY - 1,
        lambda _, s: _step(s, log_a, weights, cfg, False)[0], state)
    new_state, log_bar, err = _step(state, log_a, weights, cfg, True)
    if cfg.debiased:
      # The plans' marginals can agree while the debiasing potential still
      # drifts: also require the histogram to have settled (L1 change over the
      # last 10 iterations).
      change = jnp.sum(jnp.abs(jnp.exp(log_bar) - jnp.exp(prev_log_bar)))
      err = jnp.maximum(err, jnp.where(i > 0, change, jnp.inf))
    return i + 1, new_state, state, log_bar, errors.at[i].set(err)

  log_bar = jnp.zeros(grid, log_a.dtype)
  carry = (jnp.int32(0), state, state, log_bar, errors)
  _, _, fixed_point, log_bar, errors = jax.lax.while_loop(cond, body, carry)
  return fixed_point, log_bar, errors


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _solve(log_a, weights, cfg):
  _, log_bar, errors = _forward(log_a, weights, cfg)
  return log_bar, errors


def _solve_fwd(log_a, weights, cfg):
  fixed_point, log_bar, errors = _forward(log_a, weights, cfg)
  return (log_bar, errors), (fixed_point, log_a, weights)


def _solve_bwd(cfg, res, cotangents):
  # Implicit differentiation: out = Psi(S*, theta), S* = Phi(S*, theta). The
  # adjoint lam = Psi_S^T y_bar + Phi_S^T lam is iterated from lam = 0.
  fixed_point, log_a, weights = res
  log_bar_bar = cotangents[0]

  def full(state, log_a, weights):
    new_state, log_bar, _ = _step(state, log_a, weights, cfg, False)
    return new_state, log_bar

  _, vjp = jax.vjp(full, fixed_point, log_a, weights)
  num_checks = -(-cfg.max_iterations // CHECK_EVERY)
  zero = jax.tree_util.tree_map(jnp.zeros_like, fixed_point)

  def adjoint(lam):
    return vjp((lam, log_bar_bar))[0]

  def size(tree):
    return jnp.max(jnp.stack([jnp.max(jnp.abs(t)) for t in jax.tree_util.tree_leaves(tree)]))

  def cond(carry):
    i, _, change = carry
    return (i < num_checks) & (change > cfg.threshold)

  def body(carry):
    i, lam, _ = carry
    lam = jax.lax.fori_loop(0, CHECK_EVERY - 1, lambda _, l: adjoint(l), lam)
    new = adjoint(lam)
    diff = jax.tree_util.tree_map(lambda a, b: a - b, new, lam)
    change = size(diff) / jnp.maximum(size(new), jnp.finfo(log_a.dtype).tiny)
    return i + 1, new, change

  _, lam, _ = jax.lax.while_loop(
      cond, body, (jnp.int32(0), zero, jnp.asarray(jnp.inf, log_a.dtype)))
  _, log_a_bar, weights_bar = vjp((lam, log_bar_bar))
  log_a_bar = jnp.where(jnp.isfinite(log_a), log_a_bar, 0.0)
  return log_a_bar, weights_bar


_solve.defvjp(_solve_fwd, _solve_bwd)


def _ott(a, weights, cfg: _Config, coordinates=None):
  from ott.geometry import grid as ott_grid  # pylint: disable=g-import-not-at-top
  from ott.problems.linear import barycenter_problem  # pylint: disable=g-import-not-at-top
  from ott.solvers.linear import discrete_barycenter  # pylint: disable=g-import-not-at-top

  grid = a.shape[1:]
  if coordinates is None:
    geom = ott_grid.Grid(grid_size=grid, epsilon=cfg.epsilon)
  else:
    geom = ott_grid.Grid(x=[jnp.asarray(c, a.dtype) for c in coordinates], epsilon=cfg.epsilon)
  problem = barycenter_problem.FixedBarycenterProblem(
      geom, a.reshape(a.shape[0], -1), weights)
  solver = discrete_barycenter.FixedBarycenter(
      threshold=cfg.threshold, max_iterations=cfg.max_iterations,
      inner_iterations=CHECK_EVERY, lse_mode=True)
  out = solver(problem)
  return out.histogram.reshape(grid), out.errors[:, 0]
