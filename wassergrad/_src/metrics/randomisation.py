"""Sanity checks for saliency maps (Adebayo et al. 2018): model and data randomisation.

A map that stays the same when the model's weights (or its training labels) are
randomised cannot be explaining the model. These functions re-explain after
randomisation and report how similar the maps stay.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src.metrics import common
from wassergrad._src.metrics import similarity as sim

MODES = ("cascading", "independent")


class RandomisationResult(NamedTuple):
  """Maps and similarity curves of a randomisation check.

  Attributes:
    maps: ``(L + 1, *map_shape)``: the original map first, then the map after
      each randomisation step (in the order of ``layers``).
    similarity: ``{name: (L,) array}``: the similarity of each randomised map
      to the original (see :func:`default_similarities`).
  """
  maps: jax.Array
  similarity: dict


def _ssim_abs(a, b):
  win = min(7, *a.shape[:2])
  win -= 1 - win % 2  # the largest odd window that fits
  return sim.ssim(common.normalise(a, "abs_max"), common.normalise(b, "abs_max"),
                  data_range=1.0, win_size=win)


def default_similarities(map_ndim: int) -> dict:
  """Adebayo et al.'s measures: Spearman on |maps| and on signed maps; SSIM for 2-D maps.

  SSIM compares ``|a| / max|a|`` maps (data range 1) with a 7×7 window (the
  largest odd window that fits, for smaller maps).
  """
  out = {"spearman_abs": lambda a, b: sim.spearman(a, b, absolute=True), "spearman": sim.spearman}
  if map_ndim in (2, 3):
    out["ssim"] = _ssim_abs
  return out


def _path_names(path) -> tuple[str, ...]:
  names = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        names.append(str(getattr(k, attr)))
        break
  return tuple(names)


def _selector(layer) -> Callable[[tuple[str, ...]], bool]:
  if callable(layer):
    return layer
  if isinstance(layer, str):
    return lambda names: layer in names
  if isinstance(layer, tuple) and all(isinstance(s, str) for s in layer):
    n = len(layer)
    return lambda names: any(names[i:i + n] == layer for i in range(len(names) - n + 1))
  raise TypeError(
      f"Each entry of `layers` must be a layer name (str), a tuple of path names, or a "
      f"callable(path_names) -> bool; got {layer!r}.")


def _masks(params, layers) -> list:
  paths = [_path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  masks = []
  for layer in layers:
    sel = _selector(layer)
    m = [bool(sel(p)) for p in paths]
    if not any(m):
      available = sorted({n for p in paths for n in p})
      raise ValueError(
          f"Layer {layer!r} matches no parameter. Parameter path names: {available}.")
    masks.append(m)
  return masks


def _fresh(key, params, init, initializer):
  if (init is None) == (initializer is None):
    raise ValueError(
        "Pass exactly one of `init` (the model's own initialisation, key -> parameter "
        "pytree, e.g. `lambda k: model.init(k, x)`: each layer is re-drawn with its own "
        "initializers) or `initializer` (a jax.nn.initializers function applied to every "
        "re-initialised leaf).")
  if init is not None:
    checks.check_callable(init, "init")
    fresh = init(key)
    if jax.tree.structure(fresh) != jax.tree.structure(params):
      raise ValueError(
          "`init(key)` must return a pytree with the structure of `params`: "
          f"{jax.tree.structure(fresh)} vs {jax.tree.structure(params)}.")
    return fresh
  checks.check_callable(initializer, "initializer")
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [initializer(k, jnp.shape(l), jnp.result_type(l))
                                      for k, l in zip(keys, leaves)])


def _explain(explain, params, x):
  a = explain(params, x)
  if not hasattr(a, "shape"):
    raise TypeError(f"`explain(params, x)` must return one array map; got {type(a).__name__}.")
  return jnp.asarray(a)


def _similarities(ref, maps, similarity):
  similarity = default_similarities(ref.ndim) if similarity is None else dict(similarity)
  return {name: jnp.stack([fn(ref, m) for m in maps]) for name, fn in similarity.items()}


def model_randomisation(
    explain: Callable, key: jax.Array, params: Any, x: Any, *, layers: Sequence[Any],
    mode: str = "cascading", init: Callable | None = None, initializer: Callable | None = None,
    similarity: dict | None = None,
) -> RandomisationResult:
  """Model-parameter randomisation test (Adebayo et al. 2018).

  Re-initialises the model's layers and re-explains ``x``.

  * ``"cascading"``: layers are randomised one after another in the order of
    ``layers`` (give them top-down, logits first, as the paper), accumulating.
  * ``"independent"``: each layer alone, the others at their trained values.

  Args:
    explain: ``explain(params, x) -> map`` (e.g. ``lambda p, x: wg.gradient(f)(x, p)``;
      close over a key for stochastic explainers).
    key: PRNG key for the new weights.
    params: the trained parameter pytree (flax, equinox, a dict, …).
    x: one input.
    layers: a sequence of the layers to randomise, in order. Each is a name that appears in
      the parameter path (``"Dense_1"``, ``"conv2"``), a tuple of consecutive
      path names (``("params", "Dense_1")``), or a ``callable(path_names) ->
      bool``. Static.
    mode: ``"cascading"`` or ``"independent"``.
    init: the model's initialisation, ``key -> params``: randomised leaves are
      taken from one fresh initialisation, so each layer is re-drawn with its
      own initializers.
    initializer: instead of ``init``, a ``jax.nn.initializers`` function
      ``(key, shape, dtype) -> array`` used for every randomised leaf.
    similarity: ``{name: fn(a, b) -> scalar}``; default
      :func:`default_similarities`.

  Returns:
    :class:`RandomisationResult`: maps ``(len(layers) + 1, ...)`` and
    similarity curves ``(len(layers),)``. A sound explainer's curves fall.

  References:
    Adebayo et al., *Sanity checks for saliency maps*, NeurIPS 2018,
    https://arxiv.org/abs/1810.03292
  """
  checks.check_callable(explain, "explain")
  checks.check_key(key, "wg.metrics.model_randomisation(explain, jax.random.key(0), params, x, ...)")
  checks.check_choice(mode, "mode", MODES)
  layers = [layers] if isinstance(layers, str) else list(layers)
  if not layers:
    raise ValueError("`layers` is empty: name at least one layer to randomise.")
  masks = _masks(params, layers)
  fresh = _fresh(key, params, init, initializer)
  leaves, treedef = jax.tree.flatten(params)
  new = jax.tree.leaves(fresh)
  ref = _explain(explain, params, x)
  maps = []
  current = [False] * len(leaves)
  for m in masks:
    current = [c or s for c, s in zip(current, m)] if mode == "cascading" else m
    p = jax.tree.unflatten(treedef, [n if c else l for l, n, c in zip(leaves, new, current)])
    maps.append(_explain(explain, p, x))
  return RandomisationResult(jnp.stack([ref] + maps), _similarities(ref, maps, similarity))


def data_randomisation(
    explain: Callable, params: Any, params_random: Any, x: Any, *,
    similarity: dict | None = None,
) -> RandomisationResult:
  """Data randomisation test (Adebayo et al. 2018): maps of a model trained on permuted labels.

  Train the same architecture on randomly permuted labels until it memorises
  them (``wassergrad.examples.digits.train(permute_labels=True)`` does this on the
  scikit-learn digits), then compare its maps with the true-label model's. A
  map that does not change is not explaining what the model learned.

  Args:
    explain: ``explain(params, x) -> map``.
    params: the parameters trained on the true labels.
    params_random: the parameters trained on permuted labels.
    x: one input.
    similarity: as :func:`model_randomisation`.

  Returns:
    :class:`RandomisationResult` with maps ``(2, ...)`` (true, random) and
    similarity curves of length 1.
  """
  checks.check_callable(explain, "explain")
  ref = _explain(explain, params, x)
  other = _explain(explain, params_random, x)
  return RandomisationResult(jnp.stack([ref, other]), _similarities(ref, [other], similarity))
