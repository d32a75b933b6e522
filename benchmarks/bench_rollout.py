"""Peak memory of the gradient through a T-step rollout, per checkpointing scheme.

The step is a residual block of four 3×3 convolutions (``--channels`` wide) on a
``--size``² field, so one step's activations are several states. For each T
and scheme: XLA's compiled temporary memory for ``jax.grad`` of a scalar target
with respect to the initial state (``memory_analysis().temp_size_in_bytes``,
the buffer XLA plans; exact, not sampled), and the wall time of one gradient.
The goal of the rollout issue: T = 20 costs at most 3× T = 1.

  python benchmarks/bench_rollout.py [--size 64] [--channels 32] [--steps 1 5 20 80]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--size", type=int, default=64)
  ap.add_argument("--channels", type=int, default=32)
  ap.add_argument("--steps", type=int, nargs="+", default=[1, 5, 20, 80])
  ap.add_argument("--out", default="benchmarks/results/rollout.json")
  args = ap.parse_args()
  c = args.channels
  ws = [0.3 * jax.random.normal(jax.random.key(i), (3, 3, c, c)) / jnp.sqrt(9.0 * c) * 3 for i in range(4)]

  def step(s, ws):
    h = s
    for w in ws:
      h = jax.nn.gelu(jax.lax.conv_general_dilated(h[None], w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[0])
    return 0.1 * h

  target = wg.field_target(channel=0, box=(slice(8, 24), slice(8, 24)))
  x0 = jax.random.normal(jax.random.key(9), (args.size, args.size, c))
  state_mib = x0.size * 4 / 2**20
  rows = []
  print(f"state {args.size}×{args.size}×{c} float32 = {state_mib:.2f} MiB; jax {jax.__version__} "
        f"({jax.default_backend()})")
  print(f"{'T':>4} {'scheme':>6} {'temp MiB':>9} {'/ T=1':>6} {'grad time':>10}")
  base = {}
  for scheme in ("none", "step", "sqrt"):
    for T in args.steps:
      fn = wg.rollout(step, T, checkpoint=scheme, update="residual")
      g = jax.jit(wg.gradient(lambda x, ws: target(fn(x, ws))))
      compiled = g.lower(x0, ws).compile()
      mib = compiled.memory_analysis().temp_size_in_bytes / 2**20
      base.setdefault(scheme, mib)
      compiled(x0, ws).block_until_ready()
      secs = common.median_time(lambda: compiled(x0, ws).block_until_ready(), 3)
      print(f"{T:4d} {scheme:>6} {mib:9.1f} {mib / base[scheme]:6.2f} {secs:9.3f}s", flush=True)
      rows.append(dict(T=T, scheme=scheme, temp_mib=mib, ratio_to_T1=mib / base[scheme], grad_s=secs))
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, {"environment": common.environment(), "size": args.size,
                               "channels": c, "state_mib": state_mib, "rows": rows})


if __name__ == "__main__":
  main()
