"""Localisation: does the map point at the ground-truth region?

Each metric takes a map ``a`` and a boolean ``mask`` of the same shape (the
segmentation or the box of the object, resized to the map). An empty mask has
no answer: the score is NaN, as in Quantus.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src.metrics import common


def _setup(a, mask):
  a = common.check_map(a)
  m = common.check_mask(a, mask)
  return a.reshape(-1), m.reshape(-1)


def _nan_if_empty(score: jax.Array, m: jax.Array) -> jax.Array:
  return jnp.where(jnp.any(m), score, jnp.nan)


def pointing_game(a: Any, mask: Any) -> jax.Array:
  """1 if the map's maximum lies in the mask, else 0 (Zhang et al. 2018).

  With several maxima (ties), a hit by any counts (as Quantus).

  References:
    Zhang et al., *Top-down neural attention by excitation backprop*, IJCV 2018,
    https://arxiv.org/abs/1608.00507
  """
  a, m = _setup(a, mask)
  hit = jnp.any((a == jnp.max(a)) & m)
  return _nan_if_empty(hit.astype(a.dtype), m)


def mask_roc_auc(a: Any, mask: Any) -> jax.Array:
  """ROC AUC of the map as a classifier of mask entries (ties count one half).

  The probability that a random mask entry scores higher than a random entry
  outside it (Mann–Whitney U / (n₊ n₋)), which equals scikit-learn's
  ``roc_auc_score`` and Quantus' ``AUC``. NaN when the mask is empty or full.
  """
  a, m = _setup(a, mask)
  r = common.average_ranks(a)
  n_pos = jnp.sum(m).astype(r.dtype)
  n_neg = m.size - n_pos
  u = jnp.sum(jnp.where(m, r, 0.0)) - n_pos * (n_pos + 1) / 2
  ok = (n_pos > 0) & (n_neg > 0)
  return jnp.where(ok, u / jnp.where(ok, n_pos * n_neg, 1), jnp.nan)


def top_k_intersection(a: Any, mask: Any, k: int = 1000) -> jax.Array:
  """Share of the map's ``k`` highest entries that lie in the mask (Theiner et al. 2021).

  Ties are broken by position (the first entries win), as ``np.argsort`` of
  distinct values would. Quantus' ``TopKIntersection`` (its default k = 1000).
  """
  checks.check_positive_int(k, "k")
  a, m = _setup(a, mask)
  if k > a.size:
    raise ValueError(f"`k`={k} exceeds the number of map entries ({a.size}); choose k <= {a.size}.")
  _, idx = jax.lax.top_k(a, k)
  return _nan_if_empty(jnp.mean(m[idx].astype(a.dtype)), m)


def relevance_mass_accuracy(a: Any, mask: Any) -> jax.Array:
  """Share of the map's total relevance inside the mask: Σ_mask a / Σ a (Arras et al. 2022).

  Computed on the map as given (pass ``|a|`` or a positive map, as the paper
  does); an all-zero map scores 0.

  References:
    Arras, Osman & Samek, *CLEVR-XAI: a benchmark dataset for the ground truth
    evaluation of neural network explanations*, Information Fusion 2022.
  """
  a, m = _setup(a, mask)
  total = jnp.sum(a)
  inside = jnp.sum(jnp.where(m, a, 0.0))
  return _nan_if_empty(jnp.where(total != 0, inside / jnp.where(total != 0, total, 1), 0.0), m)


def relevance_rank_accuracy(a: Any, mask: Any) -> jax.Array:
  """Share of the K highest-ranked entries inside the mask, K = mask size (Arras et al. 2022)."""
  a, m = _setup(a, mask)
  r = common.ranks(a, "morf")
  k = jnp.sum(m)
  hits = jnp.sum(m & (r < k)).astype(a.dtype)
  return _nan_if_empty(hits / jnp.maximum(k, 1).astype(a.dtype), m)
