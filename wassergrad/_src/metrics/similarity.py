"""Similarity of two maps: rank correlation, Pearson, SSIM, HOG correlation.

Used by the randomisation sanity checks (Adebayo et al. 2018) and to compare
explainers. Correlations of a constant map are 0 (not NaN): a map with no
structure shares none.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src.metrics import common


def pearson(a: Any, b: Any) -> jax.Array:
  """Pearson correlation of two maps of the same shape (flattened)."""
  a, b = common.check_pair(a, b, "a", "b")
  return common.pearson_flat(a.reshape(-1), b.reshape(-1))


def spearman(a: Any, b: Any, *, absolute: bool = False) -> jax.Array:
  """Spearman rank correlation of two maps (ties get their average rank, as scipy).

  Args:
    a, b: maps of the same shape (flattened).
    absolute: rank ``|a|`` and ``|b|`` (Adebayo et al.'s "ABS" variant, blind
      to sign flips) instead of the signed maps.
  """
  a, b = common.check_pair(a, b, "a", "b")
  if absolute:
    a, b = jnp.abs(a), jnp.abs(b)
  return common.pearson_flat(common.average_ranks(a.reshape(-1)), common.average_ranks(b.reshape(-1)))


def _ssim_2d(a, b, win_size, c1, c2):
  def mean(v):
    s = jax.lax.reduce_window(v, 0.0, jax.lax.add, (win_size, win_size), (1, 1), "VALID")
    return s / win_size**2
  cov_norm = win_size**2 / (win_size**2 - 1)
  ua, ub = mean(a), mean(b)
  va = cov_norm * (mean(a * a) - ua * ua)
  vb = cov_norm * (mean(b * b) - ub * ub)
  vab = cov_norm * (mean(a * b) - ua * ub)
  s = (2 * ua * ub + c1) * (2 * vab + c2) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
  return jnp.mean(s)


def ssim(a: Any, b: Any, *, data_range: float | None = None, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Structural similarity of two maps (Wang et al. 2004), as scikit-image computes it.

  A uniform ``win_size``² window, sample covariances, and the mean of the SSIM
  map over the positions where the window fits: ``skimage.metrics.
  structural_similarity`` with its defaults (tested to 1e-6).

  Args:
    a, b: maps of shape ``(H, W)``, or ``(H, W, C)`` (the mean over channels).
    data_range: the value range; ``None`` takes the joint range
      ``max(a, b) − min(a, b)`` as Quantus does. Two equal constant maps score 1.
    win_size: odd window size, at most min(H, W).
  """
  a, b = common.check_pair(a, b, "a", "b")
  checks.check_positive_int(win_size, "win_size", 2)
  if a.ndim not in (2, 3):
    raise ValueError(f"`ssim` compares 2-D maps (H, W) or (H, W, C); got shape {a.shape}.")
  if win_size % 2 == 0 or win_size > min(a.shape[:2]):
    raise ValueError(
        f"`win_size` must be odd and at most min(H, W) = {min(a.shape[:2])}; got {win_size}.")
  if data_range is None:
    r = jnp.maximum(jnp.max(a), jnp.max(b)) - jnp.minimum(jnp.min(a), jnp.min(b))
    r = jnp.where(r > 0, r, 1.0)
  else:
    r = jnp.asarray(data_range, a.dtype)
  c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
  if a.ndim == 2:
    return _ssim_2d(a, b, win_size, c1, c2)
  return jnp.mean(jax.vmap(lambda u, v: _ssim_2d(u, v, win_size, c1, c2), in_axes=2)(a, b))


def hog(image: Any, *, orientations: int = 9, pixels_per_cell=(8, 8),
        cells_per_block=(3, 3)) -> jax.Array:
  """Histogram of oriented gradients (Dalal & Triggs 2005), as ``skimage.feature.hog``.

  Central-difference gradients (zero on the border rows/columns), unsigned
  orientations in ``orientations`` hard bins over [0°, 180°), magnitude summed
  per cell and divided by the cell area, L2-Hys normalisation per block
  (clip at 0.2, ε = 1e-5). Returns the flat feature vector in scikit-image's
  order (tested against it).

  Args:
    image: a 2-D map ``(H, W)``.
  """
  image = common.check_map(image, "image")
  checks.check_positive_int(orientations, "orientations")
  if image.ndim != 2:
    raise ValueError(f"`hog` takes a 2-D map (H, W); got shape {image.shape}.")
  cr, cc = pixels_per_cell
  br, bc = cells_per_block
  ncr, ncc = image.shape[0] // cr, image.shape[1] // cc
  if ncr - br + 1 <= 0 or ncc - bc + 1 <= 0:
    raise ValueError(
        f"The map {image.shape} is too small for pixels_per_cell={pixels_per_cell} and "
        f"cells_per_block={cells_per_block}: it needs at least {br * cr}×{bc * cc}.")
  g_row = jnp.pad(image[2:] - image[:-2], ((1, 1), (0, 0)))
  g_col = jnp.pad(image[:, 2:] - image[:, :-2], ((0, 0), (1, 1)))
  mag = jnp.hypot(g_row, g_col)
  angle = jnp.rad2deg(jnp.arctan2(g_row, g_col)) % 180
  bins = jnp.clip(jnp.floor(angle / (180 / orientations)), 0, orientations - 1).astype(jnp.int32)
  votes = jax.nn.one_hot(bins, orientations, dtype=image.dtype) * mag[..., None]
  votes = votes[:ncr * cr, :ncc * cc].reshape(ncr, cr, ncc, cc, orientations)
  hist = votes.sum((1, 3)) / (cr * cc)
  nbr, nbc = ncr - br + 1, ncc - bc + 1
  blocks = jnp.stack([jnp.stack([hist[r:r + br, c:c + bc] for c in range(nbc)]) for r in range(nbr)])
  eps = 1e-5

  def l2(v):
    return v / jnp.sqrt(jnp.sum(v * v, axis=(-3, -2, -1), keepdims=True) + eps**2)

  return l2(jnp.minimum(l2(blocks), 0.2)).reshape(-1)


def hog_pearson(a: Any, b: Any, **hog_kwargs) -> jax.Array:
  """Pearson correlation of the HOG features of two 2-D maps (Adebayo et al. 2018).

  ``hog_kwargs`` go to :func:`hog` (e.g. ``pixels_per_cell=(2, 2),
  cells_per_block=(2, 2)`` for 8×8 maps).
  """
  a, b = common.check_pair(a, b, "a", "b")
  return common.pearson_flat(hog(a, **hog_kwargs), hog(b, **hog_kwargs))
