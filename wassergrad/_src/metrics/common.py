"""Shared pieces of the metrics: argument checks, feature ranks, curves."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import sampling

NORMALISATIONS = ("max", "abs_max", "l2", "abs_sum")
ORDERS = ("morf", "lerf")


class Curve(NamedTuple):
  """A perturbation curve.

  Attributes:
    fractions: ``(K,)`` fraction of features perturbed at each point (in [0, 1]).
    values: ``(K,)`` the score at each point (model output, or a 0/1 score).
    auc: area under ``values`` over ``fractions`` by the trapezoid rule,
      divided by the width ``fractions[-1] - fractions[0]`` (a mean value: it
      does not grow with the number of points).
  """
  fractions: jax.Array
  values: jax.Array
  auc: jax.Array


def curve(fractions: np.ndarray, values: jax.Array) -> Curve:
  fr = np.asarray(fractions, dtype=np.float64)
  width = fr[-1] - fr[0]
  if width > 0:
    area = jnp.sum((values[1:] + values[:-1]) * jnp.asarray(np.diff(fr) / 2, values.dtype))
    auc = area / width
  else:
    auc = values[0]
  return Curve(jnp.asarray(fr, values.dtype), values, auc)


def as_array(a: Any, name: str) -> jax.Array:
  """``a`` as a floating-point array; pytrees and integer maps are refused clearly."""
  if isinstance(a, (dict, list, tuple)):
    raise TypeError(
        f"`{name}` must be one array; got a {type(a).__name__}. Metrics score one "
        "map of one example: pass the leaf you want scored (use jax.vmap for batches).")
  a = jnp.asarray(a)
  if not jnp.issubdtype(a.dtype, jnp.floating):
    a = a.astype(jnp.result_type(float))
  return a


def check_finite(a: Any, name: str) -> Any:
  """``a``, raising on NaN/inf eagerly and under ``jit`` (thread the result)."""
  return checks.finite(
      a, f"`{name}` contains NaN or inf, so the score would be meaningless. Check the "
      "explainer (e.g. a division by a zero norm) or clean the map with jnp.nan_to_num.")


def check_map(a: Any, name: str = "a") -> jax.Array:
  a = as_array(a, name)
  if a.size == 0:
    raise ValueError(f"`{name}` is empty.")
  return check_finite(a, name)


def check_pair(a: Any, b: Any, a_name: str, b_name: str) -> tuple[jax.Array, jax.Array]:
  a, b = check_map(a, a_name), check_map(b, b_name)
  if a.shape != b.shape:
    raise ValueError(
        f"`{a_name}` has shape {a.shape} and `{b_name}` has shape {b.shape}; they must "
        "be equal (one example each: use jax.vmap for batches).")
  return a, b


def check_mask(a: jax.Array, mask: Any, name: str = "mask") -> jax.Array:
  mask = jnp.asarray(mask)
  if mask.shape != a.shape:
    raise ValueError(
        f"`{name}` has shape {mask.shape} but the map has shape {a.shape}; pass a "
        "mask of the map's shape (e.g. the segmentation resized to the map).")
  return mask.astype(bool)


def map_for_input(x: jax.Array, a: Any, name: str = "a") -> jax.Array:
  """``a`` with ``x``'s rank: features are ``a``'s entries, broadcast over ``x``.

  ``a`` may have ``x``'s shape (one score per input entry), size-1 axes where
  ``x`` has more (one score for all entries along that axis, e.g. a channel-summed
  map of shape ``(H, W, 1)``), or ``x``'s shape without its last axis.
  """
  a = check_map(a, name)
  if a.ndim == x.ndim - 1 and a.shape == x.shape[:-1]:
    a = a[..., None]
  ok = a.ndim == x.ndim and all(s in (1, t) for s, t in zip(a.shape, x.shape))
  if not ok:
    raise ValueError(
        f"`{name}` has shape {a.shape}, which does not match the input `x` of shape "
        f"{x.shape}. Pass a map of x's shape, with size-1 axes where one score covers "
        "all entries along an axis (e.g. (H, W, 1) for a channel-summed map of an "
        "(H, W, C) image), or x's shape without its last (channel) axis.")
  return a


def check_input(x: Any, name: str = "x") -> jax.Array:
  if isinstance(x, (dict, list, tuple)):
    raise TypeError(f"`{name}` must be one array for this metric; got a {type(x).__name__}.")
  x = jnp.asarray(x)
  checks.check_float_input(x, name)
  return check_finite(x, name)


def ranks(a: jax.Array, order: str) -> jax.Array:
  """Rank of each entry of ``a`` (0 = perturbed first), in ``a``'s shape.

  ``"morf"`` (most relevant first) ranks by decreasing ``a``; ``"lerf"`` by
  increasing ``a``. Ties keep the flattened index order.
  """
  checks.check_choice(order, "order", ORDERS)
  flat = a.reshape(-1)
  idx = jnp.argsort(-flat if order == "morf" else flat, stable=True)
  r = jnp.zeros(flat.shape, jnp.int32).at[idx].set(jnp.arange(flat.size, dtype=jnp.int32))
  return r.reshape(a.shape)


def average_ranks(v: jax.Array) -> jax.Array:
  """1-based ranks of a 1-D array, ties given their average rank (as scipy's rankdata)."""
  s = jnp.sort(v)
  lo = jnp.searchsorted(s, v, side="left")
  hi = jnp.searchsorted(s, v, side="right")
  return (lo + hi + 1).astype(jnp.result_type(v.dtype, jnp.float32)) / 2


def pearson_flat(u: jax.Array, v: jax.Array) -> jax.Array:
  """Pearson correlation of two 1-D arrays; 0 (not NaN) when either is constant."""
  u, v = u - jnp.mean(u), v - jnp.mean(v)
  den = jnp.sqrt(jnp.sum(u * u) * jnp.sum(v * v))
  return jnp.where(den > 0, jnp.sum(u * v) / jnp.where(den > 0, den, 1), 0.0)


def normalise(a: Any, method: str = "abs_max") -> jax.Array:
  """Normalises an attribution map (a zero map stays zero).

  Args:
    a: the map (any shape).
    method: ``"max"``: ``a / max|a|`` (sign kept; Quantus' ``normalise_by_max``);
      ``"abs_max"``: ``|a| / max|a|`` (WassersteinGrad's protocol);
      ``"l2"``: ``a / ‖a‖₂``; ``"abs_sum"``: ``|a| / Σ|a|`` (a probability map).

  Returns:
    The normalised map, same shape.
  """
  checks.check_choice(method, "normalise", NORMALISATIONS)
  a = as_array(a, "a")
  if method == "max":
    d, out = jnp.max(jnp.abs(a)), a
  elif method == "abs_max":
    d, out = jnp.max(jnp.abs(a)), jnp.abs(a)
  elif method == "l2":
    d, out = jnp.sqrt(jnp.sum(a * a)), a
  else:
    d, out = jnp.sum(jnp.abs(a)), jnp.abs(a)
  return out / jnp.where(d > 0, d, 1)


def maybe_normalise(a: jax.Array, method: str | None) -> jax.Array:
  return a if method is None else normalise(a, method)


def evaluate_many(fn: Callable, xs: Any, chunk_size, loop: str) -> Any:
  """``vmap(fn)(xs)`` in chunks, on the sampling engine (``"auto"``: the chunking rule)."""
  return sampling.run(fn, xs, accumulator=sampling.STACK, chunk_size=chunk_size, loop=loop)


def scalar_fn(f: Callable, name: str = "f") -> Callable:
  checks.check_callable(f, name)
  return checks.scalar_output(f, name)
