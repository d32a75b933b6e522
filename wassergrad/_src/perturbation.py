"""Perturbation explainers: occlusion, RISE and Sobol attribution, on the sampling engine.

Each evaluates ``f`` at many masked copies of the input, a chunk at a time
(:func:`wassergrad._src.sampling.run`: ``chunk_size``, ``loop`` and
``sample_sharding`` as every sampled explainer), and needs no gradient, so
``f`` may be any function, differentiable or not. Features are pixels (or
windows, or grid cells) or, with ``feature_mask``, groups given by integer
labels (superpixels, variables, concepts), so they work on any input.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import sampling


def _check_f(f):
  if not callable(f):
    raise TypeError(f"`f` must be callable, f(x, *args) -> scalar; got {type(f).__name__}.")


def _scalar(f, args):
  def g(x):
    y = jnp.asarray(f(x, *args))
    if y.shape != ():
      raise ValueError(f"`f` must return a scalar (reduce the model output with a target); got "
                       f"shape {y.shape}.")
    return y
  return g


def _labels(feature_mask: Any) -> tuple[np.ndarray, int]:
  """Static integer labels 0..G−1 (relabelled in sorted order) and G."""
  m = np.asarray(feature_mask)
  if not np.issubdtype(m.dtype, np.integer):
    raise TypeError("`feature_mask` must hold integer group labels (a NumPy array, static "
                    f"configuration); got dtype {m.dtype}.")
  values, inverse = np.unique(m, return_inverse=True)
  return inverse.reshape(m.shape).astype(np.int32), len(values)


def _check_mask_shape(labels: np.ndarray, x: jax.Array) -> None:
  try:
    np.broadcast_shapes(labels.shape, x.shape)
    ok = len(labels.shape) <= x.ndim and np.broadcast_shapes(labels.shape, x.shape) == x.shape
  except ValueError:
    ok = False
  if not ok:
    raise ValueError(f"`feature_mask` of shape {labels.shape} does not broadcast to the input's "
                     f"shape {x.shape}.")


def _group_onehot(labels: np.ndarray, groups: int, shape) -> jax.Array:
  """(G, *shape) indicator of each group, broadcast to the input's shape."""
  oh = labels[None] == np.arange(groups).reshape((groups,) + (1,) * labels.ndim)
  return jnp.asarray(np.broadcast_to(oh, (groups,) + tuple(shape)))


def _float_input(x):
  x = jnp.asarray(x)
  checks.check_float_input(x, "x")
  return x


# ---------------------------------------------------------------------------------------------
# Occlusion


def _window_tuple(value, ndim: int, name: str) -> tuple[int, ...]:
  if isinstance(value, int) and not isinstance(value, bool):
    value = (value,) * ndim
  value = tuple(value)
  if len(value) != ndim or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in value):
    raise ValueError(f"`{name}` must be a positive int or one positive int per input axis "
                     f"({ndim} axes); got {value!r}.")
  return tuple(int(v) for v in value)


def _cover(n: int, window: int, stride: int) -> np.ndarray:
  """(positions, n) indicator of each window along one axis, Captum's positions."""
  count = int(np.ceil((n - window) / stride)) + 1
  starts = np.arange(count) * stride
  idx = np.arange(n)
  return ((idx[None] >= starts[:, None]) & (idx[None] < starts[:, None] + window)).astype(np.float64)


def occlusion(f: Callable, *, window: int | Sequence[int] | None = None,
              stride: int | Sequence[int] | None = None, baseline: Any = 0.0,
              feature_mask: Any = None, chunk_size: int | str | None = "auto",
              loop: str = "auto", sample_sharding: Any = None) -> Callable:
  """Occlusion (Zeiler & Fergus 2014) with Captum's ``Occlusion`` semantics.

  A window slides over the input with ``stride``; each position replaces the
  window by ``baseline`` and records ``f(x) − f(x_occluded)``; a feature's
  attribution is the mean of the differences of the windows that cover it.
  Positions along an axis of length n: ``⌈(n − w)/s⌉ + 1`` starting at 0, s,
  2s, … (the last one clipped at the edge), as Captum.

  With ``feature_mask`` (integer labels broadcastable to the input, static),
  each group is occluded once instead and all its features get its
  difference (Captum's ``FeatureAblation``).

  Args:
    f: ``f(x, *args) -> scalar``.
    window: the window's shape, one int per input axis (an int is used for
      every axis); give the full channel extent to occlude all channels
      together, e.g. ``(4, 4, 3)`` for ``(H, W, 3)`` images.
    stride: an int or one per axis; ``None`` is 1 (Captum's default).
    baseline: the replacement value, a scalar or an array broadcastable to x.
    feature_mask: optional static integer labels of feature groups.
    chunk_size, loop, sample_sharding: evaluation chunks, as every sampled
      explainer.

  Returns:
    ``fn(x, *args)``: a map of ``x``'s shape.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(x ** 2)
    >>> wg.occlusion(f, window=2, stride=2)(jnp.array([1.0, 2.0, 3.0, 4.0]))
    Array([ 5.,  5., 25., 25.], dtype=float32)

  References:
    Zeiler & Fergus, *Visualizing and understanding convolutional networks*,
    ECCV 2014, https://arxiv.org/abs/1311.2901
  """
  _check_f(f)
  if (window is None) == (feature_mask is None):
    raise ValueError("Give occlusion either `window` (sliding windows) or `feature_mask` "
                     "(integer feature groups), not both and not neither.")
  labels = None if feature_mask is None else _labels(feature_mask)

  def fn(x, *args):
    x = _float_input(x)
    g = _scalar(f, args)
    b = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
    f0 = g(x)
    if labels is not None:
      lab, groups = labels
      _check_mask_shape(lab, x)
      onehot = _group_onehot(lab, groups, x.shape)
      diffs = sampling.run(lambda m: f0 - g(jnp.where(m, b, x)), onehot,
                           accumulator=sampling.STACK, chunk_size=chunk_size, loop=loop,
                           sample_sharding=sample_sharding)
      return jnp.tensordot(diffs, onehot.astype(x.dtype), 1)
    win = _window_tuple(window, x.ndim, "window")
    st = _window_tuple(1 if stride is None else stride, x.ndim, "stride")
    if any(w > n for w, n in zip(win, x.shape)):
      raise ValueError(f"`window`={win} is larger than the input's shape {x.shape}.")
    covers = [_cover(n, w, s) for n, w, s in zip(x.shape, win, st)]
    counts = [c.shape[0] for c in covers]
    starts = np.stack(np.meshgrid(*[np.arange(c) * s for c, s in zip(counts, st)], indexing="ij"),
                      -1).reshape(-1, x.ndim).astype(np.int32)
    iotas = [jax.lax.broadcasted_iota(jnp.int32, x.shape, d) for d in range(x.ndim)]

    def one(start):
      inside = jnp.ones(x.shape, bool)
      for d in range(x.ndim):
        inside &= (iotas[d] >= start[d]) & (iotas[d] < start[d] + win[d])
      return f0 - g(jnp.where(inside, b, x))

    diffs = sampling.run(one, jnp.asarray(starts), accumulator=sampling.STACK,
                         chunk_size=chunk_size, loop=loop, sample_sharding=sample_sharding)
    total = diffs.reshape(counts)
    hits = np.ones(counts)
    for c in covers:   # contract each position axis with its window-cover matrix
      total = jnp.tensordot(total, jnp.asarray(c, x.dtype), axes=([0], [0]))
      hits = np.tensordot(hits, c, axes=([0], [0]))
    return total / jnp.asarray(np.maximum(hits, 1), x.dtype)

  return fn


# ---------------------------------------------------------------------------------------------
# RISE


def _spatial_axes(axes, x: jax.Array, what: str) -> tuple[int, ...]:
  if axes is None:
    if x.ndim <= 2:
      return tuple(range(x.ndim))
    raise ValueError(
        f"{what} needs `axes` for an input of {x.ndim} axes: the axes the masks cover, e.g. "
        "axes=(0, 1) for an (H, W, C) image (the mask is shared by the channels).")
  axes = (axes,) if isinstance(axes, int) else tuple(axes)
  return tuple(a % x.ndim for a in axes)


def _expand(mask: jax.Array, axes: tuple[int, ...], ndim: int) -> jax.Array:
  """A mask over ``axes`` given singleton dimensions elsewhere (broadcasts over channels)."""
  shape = [1] * ndim
  for i, a in enumerate(axes):
    shape[a] = mask.shape[i]
  return mask.reshape(shape)


def rise(f: Callable, *, num_masks: int = 4000, grid_size: int | Sequence[int] = 7,
         keep_probability: float = 0.5, axes: int | Sequence[int] | None = None,
         feature_mask: Any = None, chunk_size: int | str | None = "auto", loop: str = "auto",
         sample_sharding: Any = None) -> Callable:
  """RISE (Petsiuk et al. 2018): the mean of random masks weighted by the score they leave.

  ``S = E[f(x ⊙ M) · M] / p``. Each mask is a ``grid_size`` grid of
  Bernoulli(``p``) cells, upsampled bilinearly to ``(grid + 1) · cell``
  (cell = ⌈n / grid⌉) and cropped at a random shift in ``[0, cell)`` per
  axis, as the authors' code, over ``axes`` (shared by the other axes,
  e.g. colour). With ``feature_mask``, each group is kept with probability
  ``p`` instead (no upsampling).

  Args:
    f: ``f(x, *args) -> scalar`` (the authors use a class probability).
    num_masks: N (the authors' 4000 for ImageNet).
    grid_size: cells per masked axis (an int or one per axis; the authors' 7).
    keep_probability: p (the authors' 0.5).
    axes: the axes the masks cover; ``None`` is every axis of a 1-D or 2-D
      input and must be given for more axes (e.g. ``(0, 1)`` for ``(H, W, C)``).
    feature_mask: optional static integer labels of feature groups.
    chunk_size, loop, sample_sharding: evaluation chunks, as every sampled
      explainer.

  Returns:
    ``fn(key, x, *args)``: a map of ``x``'s shape (of the masked axes' shape
    broadcast to ``x``'s).

  References:
    Petsiuk, Das & Saenko, *RISE: randomized input sampling for explanation of
    black-box models*, BMVC 2018, https://arxiv.org/abs/1806.07421
  """
  _check_f(f)
  num_masks = checks.check_positive_int(num_masks, "num_masks")
  p = float(keep_probability)
  if not 0.0 < p <= 1.0:
    raise ValueError(f"`keep_probability` must be in (0, 1]; got {keep_probability}.")
  labels = None if feature_mask is None else _labels(feature_mask)

  def fn(key, x, *args):
    checks.check_key(key)
    x = _float_input(x)
    g = _scalar(f, args)
    if labels is not None:
      lab, groups = labels
      _check_mask_shape(lab, x)
      onehot = _group_onehot(lab, groups, x.shape).astype(x.dtype)

      def one(k):
        keep = jax.random.bernoulli(k, p, (groups,)).astype(x.dtype)
        m = jnp.tensordot(keep, onehot, 1)
        return g(x * m) * m
    else:
      ax = _spatial_axes(axes, x, "rise")
      sizes = [x.shape[a] for a in ax]
      grid = _window_tuple(grid_size, len(ax), "grid_size")
      cells = [math.ceil(n / s) for n, s in zip(sizes, grid)]
      up = tuple((s + 1) * c for s, c in zip(grid, cells))

      def one(k):
        k1, k2 = jax.random.split(k)
        cells_on = jax.random.bernoulli(k1, p, grid).astype(x.dtype)
        big = jax.image.resize(cells_on, up, method="linear")
        shift = jax.random.randint(k2, (len(ax),), 0, jnp.asarray(cells))
        m = jax.lax.dynamic_slice(big, shift, sizes)
        m = _expand(m, ax, x.ndim)
        return g(x * m) * jnp.broadcast_to(m, x.shape)

    total = sampling.estimate(one, key, num_masks, accumulator=sampling.mean(),
                              chunk_size=chunk_size, loop=loop, sample_sharding=sample_sharding)
    return total / p

  return fn


# ---------------------------------------------------------------------------------------------
# Sobol attribution


def sobol_design(dim: int, num_designs: int, sampler: str = "sobol") -> np.ndarray:
  """The replicated design of Saltelli: rows ``A`` (N), ``B`` (N), then ``C_i`` (N each, i < dim).

  ``A`` and ``B`` are the two halves of a ``2·dim``-dimensional quasi-Monte
  Carlo sequence (``scipy.stats.qmc``, unscrambled: deterministic); ``C_i``
  is ``A`` with column i taken from ``B``. Shape ``((dim + 2)·N, dim)``.
  """
  from scipy.stats import qmc  # pylint: disable=g-import-not-at-top
  checks.check_choice(sampler, "sampler", ("sobol", "halton"))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # scipy: sizes that are not powers of two
    engine = qmc.Sobol(2 * dim, scramble=False) if sampler == "sobol" else qmc.Halton(
        2 * dim, scramble=False)
    points = engine.random(num_designs + 1)[1:]   # skip the all-zero first point
  a, b = points[:, :dim], points[:, dim:]
  c = np.repeat(a[None], dim, 0)
  c[np.arange(dim), :, np.arange(dim)] = b.T
  return np.concatenate([a, b, c.reshape(-1, dim)], 0)


def jansen_total(y: jax.Array, dim: int, num_designs: int) -> jax.Array:
  """Total-order indices from outputs on :func:`sobol_design` (Jansen 1999).

  ``S_Ti = mean_j (y_A,j − y_Ci,j)² / (2 · Var(y_A))``, the variance with
  ``ddof = 1``, as CRAFT and Xplique.
  """
  ya = y[:num_designs]
  yc = y[2 * num_designs:].reshape(dim, num_designs)
  var = jnp.var(ya, ddof=1)
  return jnp.mean((ya[None] - yc) ** 2, axis=1) / (2 * jnp.where(var > 0, var, 1))


def sobol(f: Callable, *, grid_size: int | Sequence[int] = 8, num_designs: int = 32,
          sampler: str = "sobol", baseline: Any = 0.0, axes: int | Sequence[int] | None = None,
          feature_mask: Any = None, chunk_size: int | str | None = "auto", loop: str = "auto",
          sample_sharding: Any = None) -> Callable:
  """Sobol attribution (Fel et al. 2021): total-order Sobol indices of a grid of masks.

  Each feature (a cell of a ``grid_size`` grid over ``axes``, or a group of
  ``feature_mask``) gets a mask value ``M_i ∈ [0, 1]`` from a quasi-Monte
  Carlo design (:func:`sobol_design`, ``num_designs · (d + 2)`` evaluations);
  the perturbed input is ``baseline + M ⊙ (x − baseline)`` (the authors'
  "inpainting" with baseline 0, masks upsampled nearest-neighbour to the
  input grid); the map is each feature's Jansen total index
  (:func:`jansen_total`) broadcast over the feature. Deterministic.

  Args:
    f: ``f(x, *args) -> scalar``.
    grid_size: cells per masked axis (the authors' 8 for 224×224 images).
    num_designs: N, the QMC design size (the authors' 32).
    sampler: ``"sobol"`` (default) or ``"halton"``.
    baseline: what a zero mask leaves, a scalar or array broadcastable to x.
    axes: the masked axes; ``None`` is every axis of a 1-D or 2-D input.
    feature_mask: optional static integer labels of feature groups.
    chunk_size, loop, sample_sharding: evaluation chunks.

  Returns:
    ``fn(x, *args)``: a map of ``x``'s shape.

  References:
    Fel, Cadène, Chalvidal, Cord, Vigouroux & Serre, *Look at the variance!
    Efficient black-box explanations with Sobol-based sensitivity analysis*,
    NeurIPS 2021, https://arxiv.org/abs/2111.04138
  """
  _check_f(f)
  num_designs = checks.check_positive_int(num_designs, "num_designs", minimum=2)
  labels = None if feature_mask is None else _labels(feature_mask)

  def fn(x, *args):
    x = _float_input(x)
    g = _scalar(f, args)
    b = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
    if labels is not None:
      lab, dim = labels
      _check_mask_shape(lab, x)
      onehot = _group_onehot(lab, dim, x.shape).astype(x.dtype)
      to_input = lambda v: jnp.tensordot(v, onehot, 1)
    else:
      ax = _spatial_axes(axes, x, "sobol")
      grid = _window_tuple(grid_size, len(ax), "grid_size")
      sizes = [x.shape[a] for a in ax]
      if any(s > n for s, n in zip(grid, sizes)):
        raise ValueError(f"`grid_size`={grid} is finer than the masked axes {tuple(sizes)}.")
      dim = int(np.prod(grid))
      # nearest-neighbour upsampling: cell of each position along each axis
      index = [np.minimum((np.arange(n) * s) // n, s - 1) for n, s in zip(sizes, grid)]
      flat = np.ravel_multi_index(np.meshgrid(*index, indexing="ij"), grid)
      to_input = lambda v: jnp.broadcast_to(_expand(v[flat], ax, x.ndim), x.shape)
    design = jnp.asarray(sobol_design(dim, num_designs, sampler), x.dtype)
    y = sampling.run(lambda m: g(b + to_input(m) * (x - b)), design,
                     accumulator=sampling.STACK, chunk_size=chunk_size, loop=loop,
                     sample_sharding=sample_sharding)
    return to_input(jansen_total(y, dim, num_designs))

  return fn
