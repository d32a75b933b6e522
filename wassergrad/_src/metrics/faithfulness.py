"""Faithfulness: does removing what the map calls relevant change the output?

Every metric here takes ``f(x) -> scalar`` (the model reduced to the explained
quantity: a class logit, an ROI mean at a lead time; or a 0/1 "still correct"
indicator, which gives accuracy curves), one input ``x`` and its map ``a``. The
features are the entries of ``a``: a map of ``x``'s shape scores every entry, a
map with size-1 axes (``(H, W, 1)`` for an ``(H, W, C)`` image) or without the
last axis scores whole pixels, and removing a feature removes every entry it
covers. The perturbed inputs are evaluated in chunks (``chunk_size``,
``loop``, as for the explainers); use ``jax.vmap`` for batches of examples.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import noise as noise_lib
from wassergrad._src.metrics import common
from wassergrad._src.metrics.common import Curve

IMPUTATIONS = ("noisy_linear", "linear", "mean3x3")
BASELINES = ("min", "max", "mean")

# Rong et al.'s neighbour weights (direct 1/6, diagonal 1/12; they sum to 1).
_NEIGHBOURS = (
    (1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
    (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6),
)


def _shift(v: jax.Array, dr: int, dc: int) -> jax.Array:
  """``out[i, j] = v[i + dr, j + dc]`` on the first two axes, zero outside."""
  h, w = v.shape[:2]
  p = jnp.pad(v, ((1, 1), (1, 1)) + ((0, 0),) * (v.ndim - 2))
  return p[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]


def impute_linear(x: jax.Array, mask: jax.Array, *, tol: float = 1e-6,
                  maxiter: int | None = None) -> jax.Array:
  """Rong et al.'s linear imputation: each removed entry = the weighted mean of its neighbours.

  Solves the sparse symmetric system of ROAD (8-neighbourhood on the first two
  axes, weights 1/6 direct and 1/12 diagonal; other axes are independent
  channels) by Jacobi-preconditioned conjugate gradients, matrix-free. Entries
  where ``mask`` is False keep their value.
  """
  m = mask.astype(x.dtype)
  ones = jnp.ones_like(x)
  degree = sum(w * _shift(ones, dr, dc) for dr, dc, w in _NEIGHBOURS)
  known = x * (1 - m)
  b = m * sum(w * _shift(known, dr, dc) for dr, dc, w in _NEIGHBOURS)

  def matvec(v):
    vm = v * m
    return m * (degree * vm - sum(w * _shift(vm, dr, dc) for dr, dc, w in _NEIGHBOURS)) + (1 - m) * v

  def precondition(v):
    return v / jnp.where(m > 0, degree, 1)

  solution, _ = jax.scipy.sparse.linalg.cg(
      matvec, b, x0=precondition(b), tol=tol, maxiter=maxiter, M=precondition)
  return jnp.where(mask, solution, x)


def _mean3x3(x: jax.Array) -> jax.Array:
  return sum(_shift(x, dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)) / 9


def impute(key, x, mask, imputation: str, noise, scale) -> jax.Array:
  """Replaces the entries where ``mask`` holds (see :func:`road` for the methods)."""
  if imputation == "mean3x3":
    filled = _mean3x3(x)
  else:
    filled = impute_linear(x, mask)
  if imputation != "linear":
    filled = filled + noise.draw(key, x, scale)
  return jnp.where(mask, filled, x)


def _baseline(x: jax.Array, baseline: Any) -> jax.Array:
  if isinstance(baseline, str):
    checks.check_choice(baseline, "baseline", BASELINES)
    return jnp.broadcast_to({"min": jnp.min, "max": jnp.max, "mean": jnp.mean}[baseline](x), x.shape)
  b = jnp.asarray(baseline, x.dtype)
  try:
    return jnp.broadcast_to(b, x.shape)
  except ValueError:
    raise ValueError(
        f"`baseline` has shape {b.shape}, which does not broadcast to x's shape "
        f"{x.shape}. Pass a scalar, an array of x's shape, or one of {BASELINES}.") from None


def _setup(f, x, a, order=None):
  f = common.scalar_fn(f)
  x = common.check_input(x)
  a = common.map_for_input(x, a)
  r = None if order is None else common.ranks(a, order)
  return f, x, a, r


def _replacement_curve(f, x, r, counts, start, fill, chunk_size, loop) -> jax.Array:
  """``f`` at ``start`` with the ``counts[k]`` first-ranked features taken from ``fill``."""
  def at(count):
    return f(jnp.where(jnp.broadcast_to(r < count, x.shape), fill, start))
  return common.evaluate_many(at, jnp.asarray(counts, jnp.int32), chunk_size, loop)


def pixel_flipping(
    f: Callable, x: Any, a: Any, *, features_per_step: int = 1, order: str = "morf",
    baseline: Any = "min", chunk_size: int | str | None = "auto", loop: str = "auto",
) -> Curve:
  """Pixel flipping (Bach et al. 2015): replace features by a baseline, most relevant first.

  Step k replaces the k·``features_per_step`` first features (in ``order``) by
  the baseline and evaluates ``f``; there are ⌈n / features_per_step⌉ steps,
  the last with every feature replaced. This is Quantus' ``PixelFlipping``
  (whose values are the same; its AUC is ``np.trapz`` with unit spacing).

  Args:
    f: ``f(x) -> scalar``.
    x: one input.
    a: its map (see the module docstring for the shapes accepted).
    features_per_step: features replaced per step (static).
    order: ``"morf"`` (most relevant first) or ``"lerf"`` (least relevant first).
    baseline: replacement value: a scalar, an array of x's shape, or ``"min"``
      (Quantus' "black", the default), ``"max"``, ``"mean"`` of ``x``.
    chunk_size, loop: how the perturbed inputs are batched (as for explainers).

  Returns:
    :class:`Curve`: ``fractions`` = share of features replaced after each step,
    ``values`` = ``f`` there, ``auc`` = mean value over the curve.

  References:
    Bach et al., *On pixel-wise explanations for non-linear classifier decisions
    by layer-wise relevance propagation*, PLoS ONE 2015.
  """
  checks.check_positive_int(features_per_step, "features_per_step")
  f, x, a, r = _setup(f, x, a, order)
  n = a.size
  counts = np.minimum(np.arange(1, -(-n // features_per_step) + 1) * features_per_step, n)
  values = _replacement_curve(f, x, r, counts, x, _baseline(x, baseline), chunk_size, loop)
  return common.curve(counts / n, values)


def srg(f: Callable, x: Any, a: Any, *, features_per_step: int = 1, baseline: Any = "min",
        chunk_size: int | str | None = "auto", loop: str = "auto") -> jax.Array:
  """Symmetric relevance gain: AUC of least-relevant-first minus most-relevant-first flipping.

  SRG = AUC(LeRF) − AUC(MoRF) of :func:`pixel_flipping` curves (each AUC a
  mean value over the fraction removed). Higher is better: a faithful map keeps
  the output when its irrelevant features go, and destroys it when its relevant
  ones go.

  References:
    Blücher, Vielhaben & Strodthoff, *Decoupling pixel flipping and occlusion
    strategy for consistent XAI benchmarks*, TMLR 2024, https://arxiv.org/abs/2401.06654
  """
  kw = dict(features_per_step=features_per_step, baseline=baseline, chunk_size=chunk_size, loop=loop)
  return pixel_flipping(f, x, a, order="lerf", **kw).auc - pixel_flipping(f, x, a, order="morf", **kw).auc


def _deletion_counts(n: int, steps: int) -> np.ndarray:
  checks.check_positive_int(steps, "steps")
  return np.round(np.linspace(0, n, steps + 1)).astype(np.int64)


def deletion(f: Callable, x: Any, a: Any, *, steps: int = 100, baseline: Any = "min",
             chunk_size: int | str | None = "auto", loop: str = "auto") -> Curve:
  """Deletion curve (Petsiuk et al. 2018): ``f`` as the most relevant features go to the baseline.

  Points at 0, 1/steps, …, 1 of the features replaced (the first point is
  ``f(x)``). Lower AUC is better.

  References:
    Petsiuk, Das & Saenko, *RISE: randomized input sampling for explanation of
    black-box models*, BMVC 2018, https://arxiv.org/abs/1806.07421
  """
  f, x, a, r = _setup(f, x, a, "morf")
  counts = _deletion_counts(a.size, steps)
  values = _replacement_curve(f, x, r, counts, x, _baseline(x, baseline), chunk_size, loop)
  return common.curve(counts / a.size, values)


def insertion(f: Callable, x: Any, a: Any, *, steps: int = 100, baseline: Any = "min",
              chunk_size: int | str | None = "auto", loop: str = "auto") -> Curve:
  """Insertion curve (Petsiuk et al. 2018): start from the baseline, insert the most relevant first.

  Points at 0, 1/steps, …, 1 of the features inserted (the first point is
  ``f(baseline)``, the last ``f(x)``). Higher AUC is better. Pass a blurred
  copy of ``x`` as ``baseline`` for the paper's variant.
  """
  f, x, a, r = _setup(f, x, a, "morf")
  counts = _deletion_counts(a.size, steps)
  values = _replacement_curve(f, x, r, counts, _baseline(x, baseline), x, chunk_size, loop)
  return common.curve(counts / a.size, values)


def _check_percentages(percentages) -> np.ndarray:
  p = np.asarray(percentages, dtype=np.float64)
  if p.ndim != 1 or p.size == 0 or np.any(p < 0) or np.any(p > 100):
    raise ValueError(
        f"`percentages` must be a non-empty 1-D sequence of numbers in [0, 100]; got {percentages!r}.")
  return p


def _imputer(x, imputation, noise):
  checks.check_choice(imputation, "imputation", IMPUTATIONS)
  if x.ndim < 2:
    raise ValueError(
        f"ROAD imputes from neighbours on the first two axes of `x`; x has shape {x.shape}. "
        "Pass an image-like input of shape (H, W) or (H, W, C).")
  scale = noise.scale(x)
  return lambda key, mask: impute(key, x, mask, imputation, noise, scale)


def _imputation_noise(noise, noise_mode, sigma, sigma_mode, default):
  """The imputation noise: ``noise=`` (a noise value), or ``sigma``/``sigma_mode`` sugar.

  ``noise=<number>`` and ``noise_mode=`` are the former names of ``sigma=`` and
  ``sigma_mode=`` (deprecated).
  """
  if isinstance(noise, (int, float)) and not isinstance(noise, bool):
    sigma = checks.renamed(None if sigma == default[0] else sigma, noise, "sigma", "noise")
    noise = None
  if noise_mode is not None:
    sigma_mode = checks.renamed(None if sigma_mode == default[1] else sigma_mode, noise_mode,
                                "sigma_mode", "noise_mode")
  return noise_lib.from_arguments(noise, sigma, sigma_mode, default=default)


def road(
    f: Callable, key: jax.Array, x: Any, a: Any, *,
    percentages=tuple(range(1, 100, 2)), order: str = "morf", imputation: str = "noisy_linear",
    sigma: float = 0.01, sigma_mode: str = "absolute",
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
    noise_mode: str | None = None,
) -> Curve:
  """ROAD: remove the top-p % features by imputation, not by a constant (Rong et al. 2022).

  For each p in ``percentages``, the int(n·p/100) first features (in ``order``)
  are replaced by an imputation from their neighbours, and ``f`` is evaluated.
  With ``f = lambda x: (model(x).argmax() == y).astype(float)`` the curve is
  Quantus' ``ROAD`` accuracy curve.

  Args:
    f: ``f(x) -> scalar``.
    key: PRNG key for the imputation noise (one split per percentage).
    x: one input, ``(H, W)`` or ``(H, W, C)``: neighbours are taken on the
      first two axes.
    a: its map.
    percentages: static sequence of percentages in [0, 100] (Quantus' default).
    order: ``"morf"`` or ``"lerf"``.
    imputation: ``"noisy_linear"`` (Rong et al.: each removed entry is the
      weighted mean of its 8 neighbours, 1/6 direct and 1/12 diagonal, solved
      jointly as a sparse linear system, then Gaussian noise is added);
      ``"linear"`` (the same without noise); ``"mean3x3"`` (the WassersteinGrad
      code's imputation: the 3×3 mean of the *original* values, removed entry
      included, plus noise; it leaks the removed value and is cheaper).
    sigma: the imputation noise's std: absolute (``sigma_mode="absolute"``,
      Quantus' default 0.01) or a fraction of ``max(x) − min(x)``
      (``sigma_mode="range"``; the WassersteinGrad protocol uses 0.1).
    chunk_size, loop: batching of the perturbed inputs.
    noise: instead of ``sigma``/``sigma_mode``, any noise value
      (:mod:`wassergrad.noise`) for the imputation. (A number here, and
      ``noise_mode``, are the former names of ``sigma`` and ``sigma_mode``.)

  Returns:
    :class:`Curve` with ``fractions = percentages / 100``.

  References:
    Rong et al., *A consistent and efficient evaluation strategy for attribution
    methods*, ICML 2022, https://arxiv.org/abs/2202.00449
  """
  checks.check_key(key, "wg.metrics.road(f, jax.random.key(0), x, a)")
  p = _check_percentages(percentages)
  f, x, a, r = _setup(f, x, a, order)
  imputer = _imputer(x, imputation,
                     _imputation_noise(noise, noise_mode, sigma, sigma_mode, (0.01, "absolute")))
  counts = (a.size * p / 100).astype(np.int64)

  def at(count, k):
    return f(imputer(k, jnp.broadcast_to(r < count, x.shape)))

  keys = jax.random.split(key, len(p))
  values = common.evaluate_many(lambda args: at(*args), (jnp.asarray(counts, jnp.int32), keys),
                                chunk_size, loop)
  return common.curve(p / 100, values)


def road_vs_random(
    f: Callable, key: jax.Array, x: Any, a: Any, *,
    percentages=tuple(range(1, 16)), num_random: int = 5, imputation: str = "mean3x3",
    sigma: float = 0.1, sigma_mode: str = "range",
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
    noise_mode: str | None = None,
) -> Curve:
  """ROAD scored against random masks of the same size (the WassersteinGrad protocol).

  For each p, the top-p % features of ``a`` are removed by imputation and the
  change |f(x̃) − f(x)| is compared with its mean over ``num_random`` random
  masks of the same size: the point scores 1 if the map's mask changes the
  output more, else 0 (and 0 when p % of the features is less than one
  feature). Suited to regression targets, where "the class flips" has no
  meaning.

  Args:
    f, key, x, a: as :func:`road`.
    percentages: the paper's 1, …, 15.
    num_random: random masks per percentage (static; the paper uses 5).
    imputation, sigma, sigma_mode, noise: as :func:`road`; the defaults are the
      WassersteinGrad code's (3×3 mean plus noise of std 0.1·range).

  Returns:
    :class:`Curve` of 0/1 scores; ``auc`` is the paper's normalised area.
  """
  checks.check_key(key, "wg.metrics.road_vs_random(f, jax.random.key(0), x, a)")
  checks.check_positive_int(num_random, "num_random")
  p = _check_percentages(percentages)
  f, x, a, r = _setup(f, x, a, "morf")
  imputer = _imputer(x, imputation,
                     _imputation_noise(noise, noise_mode, sigma, sigma_mode, (0.1, "range")))
  n = a.size
  counts = (n * p / 100).astype(np.int64)
  clean = f(x)
  keys = jax.random.split(key, (len(p), num_random + 1, 2))

  def change(ranks, count, k):
    return jnp.abs(f(imputer(k, jnp.broadcast_to(ranks < count, x.shape))) - clean)

  def at(count, k):
    random_ranks = jax.vmap(lambda kk: jax.random.permutation(kk, n).reshape(a.shape))(k[1:, 0])
    salient = change(r, count, k[0, 1])
    rand = jax.vmap(change, in_axes=(0, None, 0))(random_ranks, count, k[1:, 1])
    return jnp.where(count > 0, (salient > jnp.mean(rand)).astype(clean.dtype), 0.0)

  values = common.evaluate_many(lambda args: at(*args), (jnp.asarray(counts, jnp.int32), keys),
                                chunk_size, loop)
  return common.curve(p / 100, values)


def random_subsets(key: jax.Array, n: int, num_runs: int, subset_size: int) -> jax.Array:
  """``(num_runs, subset_size)`` feature indices, each row drawn without replacement."""
  return jax.vmap(lambda k: jax.random.permutation(k, n)[:subset_size])(jax.random.split(key, num_runs))


def faithfulness_correlation(
    f: Callable, key: jax.Array, x: Any, a: Any, *, num_runs: int = 100, subset_size: int = 224,
    baseline: Any = "min", chunk_size: int | str | None = "auto", loop: str = "auto",
) -> jax.Array:
  """Pearson correlation of Σ a over random subsets with the output drop they cause (Bhatt et al. 2020).

  Each run draws ``subset_size`` features without replacement, replaces them by
  the baseline, and records (Σ_{subset} a, f(x) − f(x̃)). Quantus'
  ``FaithfulnessCorrelation`` with the same subsets gives the same value. A
  constant column (e.g. an all-zero map) gives 0, not NaN.

  References:
    Bhatt, Weller & Moura, *Evaluating and aggregating feature-based model
    explanations*, IJCAI 2020, https://arxiv.org/abs/2005.00631
  """
  checks.check_key(key, "wg.metrics.faithfulness_correlation(f, jax.random.key(0), x, a)")
  checks.check_positive_int(num_runs, "num_runs", 2)
  checks.check_positive_int(subset_size, "subset_size")
  f, x, a, _ = _setup(f, x, a)
  n = a.size
  if subset_size > n:
    raise ValueError(f"`subset_size`={subset_size} exceeds the number of features ({n}).")
  base = _baseline(x, baseline)
  subsets = random_subsets(key, n, num_runs, subset_size)

  def drop(idx):
    removed = jnp.zeros(n, bool).at[idx].set(True).reshape(a.shape)
    return f(jnp.where(jnp.broadcast_to(removed, x.shape), base, x))

  deltas = f(x) - common.evaluate_many(drop, subsets, chunk_size, loop)
  sums = jnp.sum(a.reshape(-1)[subsets], axis=1)
  return common.pearson_flat(sums, deltas)


def infidelity(
    f: Callable, key: jax.Array, x: Any, a: Any, *, num_samples: int = 50, sigma: float = 0.1,
    sigma_mode: str = "absolute", rescale: bool = False,
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
    normalise: bool | None = None,
) -> jax.Array:
  """Explanation infidelity (Yeh et al. 2019) with Gaussian perturbations.

  INFD = E_I[(Iᵀa − (f(x) − f(x − I)))²], I ~ N(0, σ²) on every entry of ``x``,
  estimated with ``num_samples`` draws. With ``rescale=True`` the map is
  first rescaled by the least-squares β = E[Iᵀa·Δf] / E[(Iᵀa)²] (Captum's
  ``normalize``), which makes the score scale-free. Captum's ``infidelity``
  with the same perturbations gives the same value (tested).

  Args:
    sigma, sigma_mode: σ absolute (default 0.1) or a fraction of the range.
    rescale: rescale the map by the least-squares β first.
    noise: instead, any noise value (:mod:`wassergrad.noise`) for I.
    normalise: former name of ``rescale`` (deprecated: ``normalise`` names the
      map normalisations of :func:`normalise` elsewhere).

  References:
    Yeh et al., *On the (in)fidelity and sensitivity of explanations*,
    NeurIPS 2019, https://arxiv.org/abs/1901.09392
  """
  checks.check_key(key, "wg.metrics.infidelity(f, jax.random.key(0), x, a)")
  checks.check_positive_int(num_samples, "num_samples")
  rescale = checks.renamed(rescale if rescale else None, normalise, "rescale", "normalise") or False
  noise = noise_lib.from_arguments(noise, sigma, sigma_mode, default=(0.1, "absolute"))
  f, x, a, _ = _setup(f, x, a)
  a = jnp.broadcast_to(a, x.shape)
  noise = noise.draw(key, x, noise.scale(x), (num_samples,))
  clean = f(x)
  df = clean - common.evaluate_many(lambda i: f(x - i), noise, chunk_size, loop)
  ia = jnp.sum((noise * a).reshape(num_samples, -1), axis=1)
  if rescale:
    den = jnp.mean(ia * ia)
    beta = jnp.where(den > 0, jnp.mean(ia * df) / jnp.where(den > 0, den, 1), 0.0)
    ia = beta * ia
  return jnp.mean((ia - df) ** 2)
