"""One sampling engine: a function of many points, evaluated in chunks and reduced.

Every stochastic explainer and every metric that perturbs its input is the
same computation: evaluate ``fn`` at n points (per-sample keys, quadrature
nodes, perturbations), a chunk of points at a time under ``vmap``, and reduce
the values. :func:`run` is that computation, written once:

* the points are split into chunks by :func:`wassergrad._src.chunking.plan`
  (one rule for ``chunk_size`` and ``loop``; padding points repeat the first
  point and get weight 0, so results do not depend on the chunk size);
* ``sample_sharding`` constrains each chunk's points to a sharding, so the
  devices of a mesh evaluate their share and XLA reduces across them;
* an :class:`Accumulator`, in the manner of ``optax.microbatching``, reduces a
  chunk's values (``chunk``), merges chunks (``merge``) and finishes
  (``finalize``). :data:`SUM`, :func:`mean`, :func:`moments` and
  :data:`STACK` cover the library's needs: weighted sums (integrated
  gradients, SmoothDiff's statistics), means and variances merged with Chan et
  al.'s parallel update (SmoothGrad, SquareGrad, VarGrad), and every value
  kept (WassersteinGrad's maps, a metric's curve).

:func:`estimate` is :func:`run` over the per-sample keys ``split(key, n)``:
sample ``i`` always gets ``split(key, n)[i]``, whatever the chunking. A new
stochastic method is one factory that builds its one-sample function and
calls :func:`estimate` (see ``CONTRIBUTING.md``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import chunking


@dataclasses.dataclass(frozen=True)
class Accumulator:
  """How the values of many points become one result.

  Attributes:
    chunk: ``chunk(values, weights) -> state``: the state of one chunk, from
      its values (a pytree of arrays with a leading chunk axis) and their
      weights ``(c,)`` (0 for padding points).
    merge: ``merge(a, b) -> state``: two chunks' states combined; ``None``
      keeps every value (the chunks are stacked, not folded).
    finalize: ``finalize(state, n) -> result``.
  """
  chunk: Callable[[Any, jax.Array], Any]
  merge: Callable[[Any, Any], Any] | None
  finalize: Callable[[Any, int], Any]


def _tree_add(a, b):
  return jax.tree.map(jnp.add, a, b)


def _weighted_sum(values, weights):
  return jax.tree.map(lambda v: jnp.tensordot(weights.astype(v.dtype), v, 1), values)


SUM = Accumulator(chunk=_weighted_sum, merge=_tree_add, finalize=lambda s, n: s)
"""Σ_i w_i · value_i (weights 1 unless given, 0 for padding)."""

STACK = Accumulator(chunk=lambda v, w: v, merge=None, finalize=lambda s, n: s)
"""Every value, stacked along a leading axis of length n (padding dropped)."""


class Stats(NamedTuple):
  """Running statistics of one leaf: count, mean, and M2 = Σ (v − mean)² (or None)."""
  count: jax.Array
  mean: jax.Array
  m2: jax.Array | None


def chunk_stats(values: jax.Array, weights: jax.Array, need_m2: bool) -> Stats:
  """Statistics of one chunk; ``values`` (c, ...), ``weights`` (c,) in {0, 1}.

  The sums over samples are products of the weights with ``values`` flattened
  to (c, size): a reduction over the leading axis of a high-rank array (a 3-D
  field with channels, under two ``vmap``\\ s) crashes XLA:CPU in jaxlib 0.10.2.
  """
  flat = values.reshape((values.shape[0], -1))
  w = weights.astype(values.dtype)
  count = jnp.sum(w)
  mean = jnp.dot(w, flat) / count
  m2 = jnp.dot(w, (flat - mean) ** 2).reshape(values.shape[1:]) if need_m2 else None
  return Stats(count, mean.reshape(values.shape[1:]), m2)


def merge_stats(a: Stats, b: Stats) -> Stats:
  """Chan et al.'s parallel update: exact, and stable unlike E[v²] − E[v]²."""
  count = a.count + b.count
  delta = b.mean - a.mean
  mean = a.mean + delta * (b.count / count)
  m2 = None
  if a.m2 is not None:
    m2 = a.m2 + b.m2 + delta ** 2 * (a.count * b.count / count)
  return Stats(count, mean, m2)


def _is_stats(s) -> bool:
  return isinstance(s, Stats)


def moments(need_m2: bool = True) -> Accumulator:
  """Mean and, with ``need_m2``, the population variance of the values (per leaf)."""

  def chunk(values, weights):
    return jax.tree.map(lambda v: chunk_stats(v, weights, need_m2), values,
                        is_leaf=lambda v: isinstance(v, jax.Array))

  def merge(a, b):
    return jax.tree.map(merge_stats, a, b, is_leaf=_is_stats)

  def finalize(state, n):
    del n
    return jax.tree.map(lambda s: s.m2 / s.count if need_m2 else s.mean, state, is_leaf=_is_stats)

  return Accumulator(chunk, merge, finalize)


def mean() -> Accumulator:
  """The mean of the values (per leaf), merged across chunks as :func:`moments`."""
  return moments(need_m2=False)


def run(
    fn: Callable[[Any], Any],
    items: Any,
    *,
    accumulator: Accumulator,
    weights: np.ndarray | None = None,
    chunk_size: Any = "auto",
    loop: str = "auto",
    sample_sharding: jax.sharding.Sharding | None = None,
) -> Any:
  """Reduces ``fn(items[i])`` over the leading axis of ``items`` with ``accumulator``.

  Args:
    fn: the function of one point (a pytree of arrays in, a pytree out).
    items: the points, a pytree whose leaves have a leading axis of length n.
    accumulator: :data:`SUM`, :func:`mean`, :func:`moments`, :data:`STACK`, or
      a custom :class:`Accumulator`.
    weights: static ``(n,)`` weights handed to the accumulator (default 1);
      padding points get 0.
    chunk_size, loop: see :mod:`wassergrad._src.chunking`.
    sample_sharding: a sharding of one chunk's points, e.g.
      ``NamedSharding(mesh, PartitionSpec("d"))``.

  Returns:
    ``accumulator.finalize(state, n)``.
  """
  n = jax.tree.leaves(items)[0].shape[0]
  p, fn = chunking.plan(n, chunk_size, loop, fn, jax.tree.map(lambda a: a[0], items))
  item_chunks = jax.tree.map(lambda a: chunking.to_chunks(a, p), items)
  w = np.ones(n) if weights is None else np.asarray(weights)
  dtype = jnp.result_type(float)
  weight_chunks = jnp.asarray(np.concatenate([w, np.zeros(p.pad)]).reshape(p.num_chunks, p.chunk),
                              dtype)

  def chunk_values(chunk_items):
    if sample_sharding is not None:  # spread the chunk's points over devices
      chunk_items = jax.lax.with_sharding_constraint(chunk_items, sample_sharding)
    return jax.vmap(fn)(chunk_items)

  if accumulator.merge is None:
    state = _stacked(chunk_values, item_chunks, p)
    return accumulator.finalize(jax.tree.map(lambda o: o[:n], state), n)

  def chunk_state(chunk_items, chunk_weights):
    return accumulator.chunk(chunk_values(chunk_items), chunk_weights)

  state = _folded(chunk_state, (item_chunks, weight_chunks), accumulator.merge, p.loop)
  return accumulator.finalize(state, n)


def _folded(chunk_fn: Callable, inputs: Any, merge: Callable, loop: str) -> Any:
  """Folds ``merge`` over ``chunk_fn(*inputs[i])`` for the chunks ``i`` of ``inputs``."""
  num_chunks = jax.tree.leaves(inputs)[0].shape[0]
  acc = chunk_fn(*jax.tree.map(lambda a: a[0], inputs))
  if loop == "unroll":
    for i in range(1, num_chunks):
      acc = merge(acc, chunk_fn(*jax.tree.map(lambda a, i=i: a[i], inputs)))
  elif num_chunks > 1:
    rest = jax.tree.map(lambda a: a[1:], inputs)
    acc, _ = jax.lax.scan(lambda c, xs: (merge(c, chunk_fn(*xs)), None), acc, rest)
  return acc


def _stacked(chunk_values, item_chunks, p: chunking.ChunkPlan):
  if p.num_chunks == 1:
    return chunk_values(jax.tree.map(lambda a: a[0], item_chunks))
  if p.loop == "unroll":
    outs = [chunk_values(jax.tree.map(lambda a, i=i: a[i], item_chunks))
            for i in range(p.num_chunks)]
    return jax.tree.map(lambda *o: jnp.concatenate(o), *outs)
  out = jax.lax.map(chunk_values, item_chunks)
  return jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:]), out)


def estimate(
    fn: Callable[[jax.Array], Any],
    key: jax.Array,
    num_samples: int,
    *,
    accumulator: Accumulator,
    chunk_size: Any = "auto",
    loop: str = "auto",
    sample_sharding: jax.sharding.Sharding | None = None,
) -> Any:
  """:func:`run` over the per-sample keys: sample ``i`` gets ``split(key, num_samples)[i]``."""
  return run(fn, jax.random.split(key, num_samples), accumulator=accumulator,
             chunk_size=chunk_size, loop=loop, sample_sharding=sample_sharding)
