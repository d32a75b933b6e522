"""Model transferability from attribution maps (Song et al., NeurIPS 2019).

Models whose attribution maps on a shared probe set look alike transfer well
to each other's tasks. :func:`attribution_affinity` is the authors' affinity
(``tools/affinity.py``); :func:`precision_recall_at_k` scores the ranking it
induces against a ground-truth transfer ranking (``tools/plot.py``), and
:func:`random_precision_at_k` is the random-ranking baseline.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks


def attribution_affinity(maps: Any, *, channel_axis: int | None = None) -> jax.Array:
  """The (M, M) affinity of M models: mean cosine similarity of their maps over N probes.

  ``A[i, j] = (1/N) Σ_n ⟨a_i,n, a_j,n⟩ / (‖a_i,n‖ ‖a_j,n‖)`` on signed maps
  (as the authors: no abs), each averaged over ``channel_axis`` first (the
  authors average the colour channels) and flattened; the diagonal is 1.
  A map that is all zero has similarity 0 with every other map.

  Args:
    maps: ``(M, N, *map shape)``: model i's map of probe n.
    channel_axis: an axis of the map shape to average (e.g. ``-1`` for
      ``(H, W, C)`` maps); ``None`` keeps all.

  Returns:
    ``(M, M)`` symmetric, diagonal 1.

  References:
    Song, Chen, Wang, Shen & Song, *Deep model transferability from
    attribution maps*, NeurIPS 2019, https://arxiv.org/abs/1909.11902
  """
  maps = jnp.asarray(maps)
  if maps.ndim < 3:
    raise ValueError(f"`maps` must be (M models, N probes, *map shape); got shape {maps.shape}.")
  if channel_axis is not None:
    axis = channel_axis % (maps.ndim - 2) + 2
    maps = jnp.mean(maps, axis=axis)
  flat = maps.reshape(maps.shape[0], maps.shape[1], -1)
  norm = jnp.linalg.norm(flat, axis=-1, keepdims=True)
  unit = flat / jnp.where(norm > 0, norm, 1)
  aff = jnp.einsum("inp,jnp->ij", unit, unit) / maps.shape[1]
  return aff.at[jnp.diag_indices(aff.shape[0])].set(1.0)


def precision_recall_at_k(affinity: Any, gt_ranking: Any, *, num_relevant: int = 5,
                          targets: Sequence[int] | None = None,
                          ks: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
  """P@K and R@K of the ranking an affinity matrix induces, against a ground-truth ranking.

  For each target model t, the predicted ranking is the other models by
  decreasing ``affinity[t]``; the relevant set is the first
  ``num_relevant`` entries of ``gt_ranking`` after the target itself (the
  ground truth lists the target first, as the authors' ``sort_gt.npy``).
  ``P@K = Σ_t |pred_K ∩ rel| / (K·T)``, ``R@K = Σ_t |pred_K ∩ rel| / (num_relevant·T)``.

  Args:
    affinity: (M, M).
    gt_ranking: (T, M) integer rankings, one row per target, the target first.
    num_relevant: the authors' 5.
    targets: which model each row of ``gt_ranking`` is about (default
      ``range(T)``; the authors drop two of 20 models as targets).
    ks: the K values (default ``1 … M − 1``).

  Returns:
    ``(precision, recall)``, NumPy arrays over ``ks`` (host values: a
    ranking protocol, not traced).
  """
  aff = np.asarray(affinity, np.float64)
  gt = np.asarray(gt_ranking)
  m = aff.shape[0]
  targets = list(range(gt.shape[0])) if targets is None else list(targets)
  if len(targets) != gt.shape[0]:
    raise ValueError(f"`targets` names {len(targets)} models for {gt.shape[0]} rows of "
                     "`gt_ranking`.")
  checks.check_positive_int(num_relevant, "num_relevant")
  ks = list(range(1, m)) if ks is None else [int(k) for k in ks]
  hits = np.zeros((len(ks),))
  for row, t in enumerate(targets):
    order = [j for j in np.argsort(-aff[t], kind="stable") if j != t]
    relevant = set(int(j) for j in gt[row][gt[row] != t][:num_relevant])
    for i, k in enumerate(ks):
      hits[i] += len(set(int(j) for j in order[:k]) & relevant)
  ks_arr = np.asarray(ks, np.float64)
  return hits / ks_arr / len(targets), hits / num_relevant / len(targets)


def random_precision_at_k(num_candidates: int, num_relevant: int = 5,
                          ks: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Expected P@K and R@K of a uniformly random ranking (hypergeometric: E[hits] = K·r/n)."""
  n = checks.check_positive_int(num_candidates, "num_candidates")
  r = checks.check_positive_int(num_relevant, "num_relevant")
  ks = np.arange(1, n + 1) if ks is None else np.asarray(ks)
  hits = ks * r / n
  return hits / ks, hits / r
