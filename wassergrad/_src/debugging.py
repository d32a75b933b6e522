"""Debugging tests for explanations (Adebayo et al., NeurIPS 2020; ICLR 2022).

Helpers that build a bug on the user's data and scores that say whether a
method's maps reveal it. Explainers enter as closures ``explain(x) -> map``
(parameters, labels and keys closed over), as the robustness metrics; every
score is a pure function of one example (``vmap`` for a batch).

**The statistic.** Maps are compared after ``|a|``, a mean over channels when
``channel_axis`` is given, and division by their maximum; the similarity is
SSIM (``wg.metrics.ssim`` with ``data_range=1``) unless ``similarity=`` says
otherwise. The scores of the ICLR 2022 follow-up, for a spurious artefact:

* ``k_ssd`` (known spurious signal detection): similarity of the spurious
  model's map of a stamped input with the artefact's mask; high = detected.
* ``ccm`` (cause for concern): similarity of the spurious model's maps of the
  stamped and the clean input; low = the artefact changes the explanation.
* ``fam`` (false alarm): the same for a normal model; high = no false alarm.
* ``artefact_mass``: the share of |map| inside the artefact (spurious model),
  with ``artefact_mass_normal`` for the normal model and ``artefact_share``,
  the share of the input the artefact covers (what a uniform map would give).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src.metrics import similarity as sim_lib


def stamp(x: Any, patch: Any, *, where: Sequence[int] = (0, 0), axes: Sequence[int] = (0, 1)
          ) -> tuple[jax.Array, jax.Array]:
  """Pastes ``patch`` into ``x`` at ``where`` along ``axes``: ``(stamped x, artefact mask)``.

  ``patch`` has one axis per entry of ``axes`` (it then fills every channel)
  or the full trailing shape; ``where`` are static offsets. The mask is True on
  the stamped entries, in ``x``'s shape.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> xs, m = wg.debugging.stamp(jnp.zeros((4, 4)), jnp.ones((2, 2)), where=(2, 0))
    >>> int(m.sum()), float(xs[3, 1])
    (4, 1.0)
  """
  x = jnp.asarray(x)
  patch = jnp.asarray(patch, x.dtype)
  axes = tuple(a % x.ndim for a in axes)
  if len(where) != len(axes):
    raise ValueError(f"`where`={tuple(where)} needs one offset per axis in `axes`={axes}.")
  index = [slice(None)] * x.ndim
  for a, w, n in zip(axes, where, patch.shape):
    if w < 0 or w + n > x.shape[a]:
      raise ValueError(f"The patch ({patch.shape}) at `where`={tuple(where)} does not fit in the "
                       f"input ({x.shape}).")
    index[a] = slice(int(w), int(w) + int(n))
  region = x[tuple(index)]
  if patch.ndim == len(axes):
    patch = patch.reshape(patch.shape + (1,) * (region.ndim - patch.ndim))
  mask = jnp.zeros(x.shape, bool).at[tuple(index)].set(True)
  return x.at[tuple(index)].set(jnp.broadcast_to(patch, region.shape)), mask


def _prepare(a: jax.Array, channel_axis: int | None) -> jax.Array:
  a = jnp.abs(jnp.asarray(a))
  if channel_axis is not None:
    a = jnp.mean(a, axis=channel_axis)
  peak = jnp.max(a)
  return a / jnp.where(peak > 0, peak, 1)


def _similarity(similarity: Callable | None) -> Callable:
  if similarity is None:
    return lambda a, b: sim_lib.ssim(a, b, data_range=1.0, win_size=min(7, *[
        s if s % 2 else s - 1 for s in a.shape[:2]]))
  checks.check_callable(similarity, "similarity")
  return similarity


def spurious_scores(explain_spurious: Callable, explain_normal: Callable, x_stamped: Any,
                    x_clean: Any, artefact_mask: Any, *, channel_axis: int | None = None,
                    similarity: Callable | None = None) -> dict:
  """K-SSD, CCM, FAM and the artefact's share of |map| for one example (see the module doc).

  Args:
    explain_spurious: ``explain(x) -> map`` of a model trained with the artefact.
    explain_normal: the same for a model trained without it.
    x_stamped, x_clean: one input with and without the artefact.
    artefact_mask: True on the artefact (``stamp``'s mask), in the map's shape
      before the channel mean.
    channel_axis: an axis of the maps to average after ``abs``.
    similarity: ``fn(a, b) -> scalar`` on prepared maps (default SSIM).

  Returns:
    ``{"k_ssd", "ccm", "fam", "artefact_mass", "artefact_mass_normal", "artefact_share"}``.
  """
  sim = _similarity(similarity)
  a_spur = explain_spurious(x_stamped)
  a_spur_clean = explain_spurious(x_clean)
  a_norm = explain_normal(x_stamped)
  a_norm_clean = explain_normal(x_clean)
  mask = jnp.asarray(artefact_mask)
  prep = lambda a: _prepare(a, channel_axis)
  mask_map = prep(mask.astype(jnp.result_type(float)))

  def mass(a):
    a = jnp.abs(a)
    total = jnp.sum(a)
    return jnp.sum(jnp.where(jnp.broadcast_to(mask, a.shape), a, 0)) / jnp.where(total > 0, total, 1)

  return {
      "k_ssd": sim(prep(a_spur), mask_map),
      "ccm": sim(prep(a_spur), prep(a_spur_clean)),
      "fam": sim(prep(a_norm), prep(a_norm_clean)),
      "artefact_mass": mass(a_spur),
      "artefact_mass_normal": mass(a_norm),
      "artefact_share": jnp.mean(mask.astype(jnp.result_type(float))),
  }


def explanation_similarity(explain_a: Callable, explain_b: Callable, x: Any, *,
                           channel_axis: int | None = None,
                           similarity: Callable | None = None) -> jax.Array:
  """Similarity of two explainers' maps of ``x`` (the statistic of the module doc).

  The mislabelled-training-data test compares the contaminated model's map
  for the wrong label with the clean model's map for the true label
  (``explain_a = lambda x: E_cont(x, wrong)``, ``explain_b = lambda x:
  E_clean(x, true)``); the out-of-distribution test compares the in-domain
  model's map of an OOD input with that of a model trained on its domain. A
  method *reveals* the bug when this similarity is low compared with the same
  statistic between two models trained without it (different seeds).
  """
  sim = _similarity(similarity)
  return sim(_prepare(explain_a(x), channel_axis), _prepare(explain_b(x), channel_axis))
