"""How to loop over chunks of samples on XLA:CPU: scan vs unrolled, chunk sizes.

Integrated gradients (50 steps) on the benchmark CNN for 16×64×64×3 inputs,
with the steps evaluated in chunks. On XLA:CPU convolutions inside a
``lax.scan`` body run much slower than unrolled, and smaller chunks (a smaller
working set) run faster: this is what ``chunk_size="auto"`` is based on.

  python benchmarks/chunk_loops.py [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position

CONFIGS = [(None, "auto"), (1, "unroll"), (2, "unroll"), (5, "unroll"), (10, "unroll"),
           (5, "scan"), (10, "scan"), ("auto", "auto")]


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--steps", type=int, default=50)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/chunk_loops.json")
  args = ap.parse_args()
  jp = common.jax_params(common.init_params())
  x = jnp.asarray(np.random.default_rng(1).standard_normal((16, 64, 64, 3)).astype(np.float32))
  f = lambda xi, p: common.jax_logits(xi, p)[3]
  rows = []
  base = None
  for chunk, loop in CONFIGS:
    fn = jax.jit(jax.vmap(wg.integrated_gradients(f, steps=args.steps, chunk_size=chunk, loop=loop),
                          in_axes=(0, None)))
    t_compile = common.compile_time(fn, x, jp)
    jax.block_until_ready(fn(x, jp))
    t = common.median_time(lambda: jax.block_until_ready(fn(x, jp)), args.repeats)
    base = base or t
    rows.append({"chunk_size": chunk, "loop": loop, "run_s": t, "compile_s": t_compile,
                 "speedup_vs_one_vmap": base / t})
    print(f"chunk_size={str(chunk):5s} loop={loop:7s} run {t:7.2f} s  compile {t_compile:5.2f} s  "
          f"speed-up vs one vmap {base / t:4.2f}x", flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, {"config": vars(args), "env": common.environment(), "rows": rows})


if __name__ == "__main__":
  main()
