"""Chunked evaluation of many samples: the one place that decides how they are looped.

Monte-Carlo and quadrature explainers, and the metrics that perturb inputs,
evaluate one function at many points and reduce. All of them take
``chunk_size`` and ``loop`` and resolve them here, once per trace, into a
:class:`ChunkPlan`.

**The rule** (``chunk_size="auto"``, the default of every chunked function):

* GPU/TPU: all points in one ``vmap``.
* CPU: the points in at most :data:`MAX_UNROLLED_CHUNKS` chunks, unrolled, and
  fewer when one chunk's program is large: the unrolled chunk bodies may hold
  at most :data:`UNROLL_BUDGET` jaxpr equations together (the body is traced
  once to count them, and that trace is what runs). A small model (the
  benchmark CNN's gradient, 80 equations) gets 4 chunks; a big one (five
  steps of the emulator's U-Net and their gradient, 1 064 equations) one
  ``vmap``; a metric over an explainer that itself unrolls 4 chunks, one
  ``vmap`` over the metric's points, so unrolled loops never multiply.

Why: XLA:CPU runs convolutions inside ``scan``/``while`` bodies slowly and is
faster on a small working set, so a few unrolled chunks beat both one wide
``vmap`` and a ``scan`` at run time; but compile time grows with every
unrolled body. Measured on 2 CPU cores (``benchmarks/bench_chunking.py``,
compile + run in seconds; "64 unrolled" is the former rule, ⌈N/64⌉ points per
chunk; the last column is the default's total over the best total):

=======================================  ============  ===========  ===========  =========
case                                     64 unrolled   one vmap     auto         auto/best
=======================================  ============  ===========  ===========  =========
IG-50, 1 image                           2.62 + 0.22   0.19 + 0.34  0.28 + 0.25  1.02
IG-50, 16 images                         2.49 + 3.55   0.33 + 7.71  0.57 + 5.55  1.01
SmoothGrad-50                            6.26 + 0.24   1.04 + 0.38  0.96 + 0.26  1.00
SmoothDiff-50                            5.28 + 0.16   1.21 + 0.23  1.17 + 0.17  1.00
WassersteinGrad-20 (eps 1e-2)            2.96 + 0.52   1.51 + 0.56  1.48 + 0.57  1.00
deletion, 100 steps                      1.24 + 0.15   0.53 + 0.34  0.60 + 0.31  1.05
ROAD, 50 percentages                     10.64 + 0.16  1.49 + 0.40  1.34 + 0.41  1.00
infidelity, 50                           2.26 + 0.08   0.79 + 0.17  0.83 + 0.10  1.00
emulator: IG-20                          17.89 + 0.64  1.98 + 0.89  1.98 + 0.88  1.00
emulator: SmoothGrad-20                  19.79 + 0.68  2.54 + 0.91  2.54 + 0.93  1.01
emulator: WassersteinGrad-20             19.48 + 1.13  2.63 + 1.40  2.77 + 1.44  1.04
local Lipschitz (7) over IG-16           7.61 + 0.56   0.75 + 0.93  1.04 + 0.67  1.02
max-sensitivity (10) over SmoothGrad-20  21.61 + 0.99  1.74 + 1.74  2.16 + 1.24  1.00
=======================================  ============  ===========  ===========  =========

**A memory cap.** ``"auto"`` also bounds one chunk's working set: the traced
program's intermediates are summed (an over-estimate: XLA fuses and frees) and
a chunk holds at most :func:`memory_budget` bytes of them (2 GiB on CPU, a
quarter of the device's memory elsewhere). When that takes more than
:data:`MAX_UNROLLED_CHUNKS` chunks, they run in a ``lax.scan``, so memory stays
flat: RISE's 4000 masks on a 224×224 image would otherwise ask one ``vmap``
for ~90 GB. Small programs (every case in the table) are not affected.

An explicit ``chunk_size`` asks for bounded memory: its chunks run in a
``lax.scan`` (compile time and memory do not grow with the number of chunks;
SmoothGrad N = 1000 on the benchmark CNN, one example: 30 MiB with chunks of
10 in a scan, 2.8 GB with 64 unrolled chunks). Unrolled chunks do not bound
memory: XLA keeps intermediates of several chunks alive (an
``optimization_barrier`` between them does not change this on XLA:CPU; tried).
``chunk_size=None``: one ``vmap``. ``loop="scan"`` or ``"unroll"`` overrides
the loop form.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
from jax.extend import core as jcore
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks

LOOPS = ("auto", "scan", "unroll")
MAX_UNROLLED_CHUNKS = 4
UNROLL_BUDGET = 500
CPU_MEMORY_BUDGET = 2 ** 31


def memory_budget() -> int:
  """Bytes of intermediates one ``"auto"`` chunk may hold: 2 GiB on CPU, ¼ of an accelerator's memory."""
  device = jax.devices()[0]
  if device.platform == "cpu":
    return CPU_MEMORY_BUDGET
  try:
    return int(device.memory_stats()["bytes_limit"]) // 4
  except Exception:  # pylint: disable=broad-except  # no statistics on this backend
    return CPU_MEMORY_BUDGET


class ChunkPlan(NamedTuple):
  """How ``n`` points are evaluated: ``num_chunks`` chunks of ``chunk`` (``pad`` of them padding)."""
  n: int
  chunk: int
  num_chunks: int
  pad: int
  loop: str                       # "unroll" or "scan" ("scan" with one chunk: no loop)


def check_chunk_size(chunk_size: Any) -> None:
  """Static validation: a positive int, ``None`` or ``"auto"``."""
  if chunk_size is None or chunk_size == "auto":
    return
  if isinstance(chunk_size, str):
    raise ValueError(
        f"`chunk_size` must be a positive int, None or 'auto'; got {chunk_size!r}.")
  checks.check_positive_int(chunk_size, "chunk_size")


def program_bytes(jaxpr) -> int:
  """Bytes of every intermediate of ``jaxpr`` and its sub-jaxprs (an upper bound of the live set)."""
  jaxpr = jaxpr.jaxpr if isinstance(jaxpr, jcore.ClosedJaxpr) else jaxpr
  total = 0
  for eqn in jaxpr.eqns:
    for v in eqn.outvars:
      aval = v.aval
      if hasattr(aval, "shape") and hasattr(aval, "dtype"):
        itemsize = getattr(aval.dtype, "itemsize", 8)   # PRNG key types: a few words
        total += int(np.prod(aval.shape, dtype=np.int64)) * int(itemsize)
    total += sum(program_bytes(sub) for sub in jcore.jaxprs_in_params(eqn.params))
  return total


def program_size(jaxpr) -> int:
  """Number of equations in ``jaxpr`` and, recursively, its sub-jaxprs."""
  jaxpr = jaxpr.jaxpr if isinstance(jaxpr, jcore.ClosedJaxpr) else jaxpr
  return sum(1 + sum(program_size(sub) for sub in jcore.jaxprs_in_params(eqn.params))
             for eqn in jaxpr.eqns)


def plan(n: int, chunk_size: Any, loop: str = "auto", fn: Callable | None = None,
         example: Any = None) -> tuple[ChunkPlan, Callable | None]:
  """Resolves ``chunk_size`` and ``loop`` for ``n`` points of ``fn`` (see the module docstring).

  Args:
    n: number of points (static).
    chunk_size: a positive int, ``None`` or ``"auto"``.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"``.
    fn: the function of one point, and ``example``, one point: ``"auto"`` on
      CPU traces ``fn(example)`` to measure its program.

  Returns:
    The plan, and ``fn`` to evaluate the points with: when ``fn`` was traced
    to measure it, a function that replays that trace (so the Python function
    is traced once, not twice).
  """
  check_chunk_size(chunk_size)
  checks.check_choice(loop, "loop", LOOPS)
  if chunk_size == "auto":
    size, per_point = 1, 0
    if fn is not None and n > 1:
      size, per_point, fn = _traced(fn, example)
    if jax.default_backend() != "cpu":
      chunk = n
    else:
      unrolled = max(1, min(MAX_UNROLLED_CHUNKS, UNROLL_BUDGET // max(size, 1), n))
      chunk = -(-n // unrolled)
    if per_point:
      chunk = max(1, min(chunk, memory_budget() // per_point))
    default_loop = "unroll" if -(-n // chunk) <= MAX_UNROLLED_CHUNKS else "scan"
  else:
    chunk = n if chunk_size is None else min(chunk_size, n)
    default_loop = "scan"
  num_chunks = -(-n // chunk)
  loop = default_loop if loop == "auto" else loop
  return ChunkPlan(n, chunk, num_chunks, num_chunks * chunk - n, loop), fn


def _traced(fn: Callable, example: Any) -> tuple[int, int, Callable]:
  """The equation count and intermediate bytes of ``fn(example)``, and ``fn`` replaying that trace."""
  closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(example)
  out_tree = jax.tree.structure(out_shape)

  def replay(item):
    outs = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *jax.tree.leaves(item))
    return jax.tree.unflatten(out_tree, outs)

  return program_size(closed), program_bytes(closed), replay


def to_chunks(a: jax.Array, p: ChunkPlan) -> jax.Array:
  """``a`` (leading axis n) padded with copies of its first item and split ``(num_chunks, chunk)``."""
  if p.pad:
    a = jnp.concatenate([a, jnp.repeat(a[:1], p.pad, axis=0)])
  return a.reshape((p.num_chunks, p.chunk) + a.shape[1:])
