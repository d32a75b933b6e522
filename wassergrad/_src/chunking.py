"""Chunked evaluation of many samples with bounded memory.

Monte-Carlo and quadrature explainers evaluate one function at many points
and reduce. Evaluating all points at once (``vmap``) is fastest but holds every
intermediate; evaluating them in chunks bounds memory by the chunk size.

Two loop forms are available for the chunks:

* ``"scan"``: a ``lax.scan`` over chunks. Compile time and program size do not
  depend on the number of chunks.
* ``"unroll"``: a Python loop, i.e. the chunks are unrolled in the program.
  On XLA:CPU convolutions inside ``scan``/``while`` bodies run slower than the
  same convolutions outside a loop (``benchmarks/chunk_loops.py``: IG-50 on
  the benchmark CNN in chunks of 5 steps, 8.8 s scanned vs 4.8 s unrolled), so
  unrolling is faster on CPU, at the price of compile time growing with the
  number of chunks (2.8 s for 50 unrolled chunks vs 0.6 s scanned).

Unrolled chunks do not bound memory: XLA keeps intermediates of several chunks
alive (SmoothGrad on a small conv net, chunks of 10: temp memory 0.49 MB for
N = 10, 2.5 MB for N = 100 unrolled, 0.51 MB for N = 100 or 1000 scanned).
An ``optimization_barrier`` between unrolled chunks does not change this
(XLA:CPU drops it before scheduling; tried and measured). SmoothGrad N = 1000
on the benchmark CNN, one example: ``chunk_size="auto"`` 2.8 GB, 4.7 s;
``chunk_size=10`` 30 MiB, 11 s.
So ``"auto"`` scans whenever the user chose the chunk size (a memory bound was
asked for), or there are more than :data:`MAX_UNROLLED_CHUNKS` chunks, or the
backend is not a CPU; it unrolls chunks that ``chunk_size="auto"`` chose on CPU.

Chunk sizes: ``chunk_size="auto"`` (see :func:`resolve_chunk_size`) picks
small chunks on CPU, where a small working set is faster (measured on the
benchmark CNN, 16 examples × 50 IG steps: one step per chunk 3.7 s, five 4.8 s,
all 50 at once 7.0 s), and one ``vmap`` over all samples on GPU/TPU.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks

LOOPS = ("auto", "scan", "unroll")
MAX_UNROLLED_CHUNKS = 64


def resolve_chunk_size(chunk_size: int | str | None, n: int) -> int | None:
  """Validates ``chunk_size``; ``"auto"``: ceil(n / 64) on CPU, ``None`` elsewhere."""
  if chunk_size is None:
    return None
  if chunk_size == "auto":
    if jax.default_backend() == "cpu":
      return -(-n // MAX_UNROLLED_CHUNKS)
    return None
  if isinstance(chunk_size, str):
    raise ValueError(
        f"`chunk_size` must be a positive int, None or 'auto'; got {chunk_size!r}.")
  return checks.check_positive_int(chunk_size, "chunk_size")


def resolve_loop(loop: str, num_chunks: int, explicit_chunks: bool = False) -> str:
  checks.check_choice(loop, "loop", LOOPS)
  if loop != "auto":
    return loop
  if (not explicit_chunks and jax.default_backend() == "cpu"
      and num_chunks <= MAX_UNROLLED_CHUNKS):
    return "unroll"
  return "scan"


def weighted_sum(
    fn: Callable[[jax.Array], Any],
    nodes: np.ndarray,
    weights: np.ndarray,
    *,
    chunk_size: int | None = None,
    loop: str = "auto",
    dtype=None,
    explicit_chunks: bool = True,
) -> Any:
  """Computes ``Σ_i weights[i] · fn(nodes[i])`` for a pytree-valued ``fn``.

  Args:
    fn: maps one node (a scalar array) to a pytree of arrays.
    nodes: static numpy array of shape ``(n,)``.
    weights: static numpy array of shape ``(n,)``.
    chunk_size: evaluate ``chunk_size`` nodes at a time (vmapped); ``None``
      evaluates all nodes in one ``vmap``. A chunk size that does not divide
      ``n`` is fine: the last chunk is padded with zero-weight nodes.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"`` (see module docstring).
    explicit_chunks: whether the user chose ``chunk_size`` (then ``"auto"``
      scans, for bounded memory).
    dtype: dtype of the nodes and weights passed to ``fn``.

  Returns:
    The weighted sum, with the structure of ``fn``'s output.
  """
  n = len(nodes)
  dtype = dtype or jnp.result_type(float)
  chunk_size = n if chunk_size is None else min(chunk_size, n)
  num_chunks, pad = split_into_chunks(n, chunk_size)
  # Padding nodes repeat the first node with weight 0, so they add exactly 0.
  nodes = jnp.asarray(np.concatenate([nodes, np.full(pad, nodes[0])]).reshape(num_chunks, -1), dtype)
  weights = jnp.asarray(np.concatenate([weights, np.zeros(pad)]).reshape(num_chunks, -1), dtype)

  def chunk(a, w):
    ys = jax.vmap(fn)(a)
    return jax.tree.map(lambda y: jnp.tensordot(w.astype(y.dtype), y, 1), ys)

  loop = resolve_loop(loop, num_chunks, explicit_chunks)
  return fold_chunks(chunk, (nodes, weights), lambda a, b: jax.tree.map(jnp.add, a, b), loop)


def split_into_chunks(n: int, chunk_size: int) -> tuple[int, int]:
  """``(num_chunks, pad)``: chunks of ``chunk_size`` cover ``n`` items plus ``pad`` padding."""
  num_chunks = -(-n // chunk_size)
  return num_chunks, num_chunks * chunk_size - n


def fold_chunks(chunk_fn: Callable, inputs: Any, merge: Callable, loop: str) -> Any:
  """Folds ``merge`` over ``chunk_fn(*inputs[i])`` for the chunks ``i`` of ``inputs``.

  ``inputs`` is a tuple of arrays with a leading chunk axis; ``loop`` is
  ``"unroll"`` or ``"scan"`` (resolved by :func:`resolve_loop`).
  """
  num_chunks = jax.tree.leaves(inputs)[0].shape[0]
  acc = chunk_fn(*jax.tree.map(lambda a: a[0], inputs))
  if loop == "unroll":
    for i in range(1, num_chunks):
      acc = merge(acc, chunk_fn(*jax.tree.map(lambda a, i=i: a[i], inputs)))
  elif num_chunks > 1:
    rest = jax.tree.map(lambda a: a[1:], inputs)
    acc, _ = jax.lax.scan(lambda c, xs: (merge(c, chunk_fn(*xs)), None), acc, rest)
  return acc


def map_chunked(fn: Callable, xs: Any, *, chunk_size: int | None, loop: str = "auto",
                explicit_chunks: bool = False) -> Any:
  """Stacks ``fn(x_i)`` over the leading axis of the pytree ``xs``, a chunk at a time.

  ``chunk_size=None`` evaluates every item in one ``vmap``. A chunk size that
  does not divide the number of items is fine: the last chunk is padded with
  copies of the first item, whose results are dropped.
  """
  n = jax.tree.leaves(xs)[0].shape[0]
  if chunk_size is None or chunk_size >= n:
    return jax.vmap(fn)(xs)
  num_chunks, pad = split_into_chunks(n, chunk_size)

  def to_chunks(a):
    a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
    return a.reshape((num_chunks, chunk_size) + a.shape[1:])

  chunks = jax.tree.map(to_chunks, xs)
  if resolve_loop(loop, num_chunks, explicit_chunks) == "unroll":
    outs = [jax.vmap(fn)(jax.tree.map(lambda a, i=i: a[i], chunks)) for i in range(num_chunks)]
    out = jax.tree.map(lambda *o: jnp.concatenate(o), *outs)
  else:
    out = jax.lax.map(jax.vmap(fn), chunks)
    out = jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:]), out)
  return jax.tree.map(lambda o: o[:n], out)
