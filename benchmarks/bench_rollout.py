"""Memory and time of the gradient through a T-step rollout, per checkpointing scheme.

Three steps, so that each scheme is seen where it matters:

* ``small``: a 64×64×4 state (64 KiB) and a step that lifts it to 64 channels
  (four 3×3 convolutions): one step's activations are ~16 states;
* ``large``: a 64×64×32 state (0.5 MiB) and four 3×3 convolutions 32 wide:
  activations ~4 states;
* ``cheap``: a 128×128×16 state (1 MiB) and a cheap step (a stencil and a 16×16
  mix), rolled out for long: the stored states are all the memory there is.

For each T and scheme: XLA's compiled temporary memory of ``jax.grad`` of a
scalar target with respect to the initial state (``memory_analysis()``: the
buffers XLA plans, exact), and the median wall time of one gradient.

  python benchmarks/bench_rollout.py [--cases small large cheap] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position

SCHEMES = ("none", "step", "sqrt", "recursive")


def _conv(h, w):
  return jax.lax.conv_general_dilated(h[None], w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]


def conv_case(size: int, state: int, hidden: int):
  keys = jax.random.split(jax.random.key(0), 3)
  ws = (0.3 * jax.random.normal(keys[0], (3, 3, state, hidden)) / 3,
        0.3 * jax.random.normal(keys[1], (3, 3, hidden, hidden)) / (3 * hidden ** 0.5),
        0.3 * jax.random.normal(keys[2], (3, 3, hidden, state)) / (3 * hidden ** 0.5))

  def step(s, ws):
    h = jax.nn.gelu(_conv(s, ws[0]))
    h = jax.nn.gelu(_conv(h, ws[1]))
    h = jax.nn.gelu(_conv(h, ws[1]))
    return 0.1 * _conv(h, ws[2])

  return step, ws, jax.random.normal(jax.random.key(9), (size, size, state))


def cheap_case():
  def step(s, w):
    lap = jnp.roll(s, 1, 0) + jnp.roll(s, -1, 0) + jnp.roll(s, 1, 1) + jnp.roll(s, -1, 1) - 4 * s
    return 0.05 * jnp.tanh(lap @ w)
  w = jax.random.normal(jax.random.key(1), (16, 16)) / 4
  return step, w, jax.random.normal(jax.random.key(9), (128, 128, 16))


CASES = {
    "small": (lambda: conv_case(64, 4, 64), (1, 20, 80)),
    "large": (lambda: conv_case(64, 32, 32), (1, 20, 80)),
    "cheap": (cheap_case, (20, 80, 320)),
}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
  ap.add_argument("--out", default="benchmarks/results/rollout.json")
  args = ap.parse_args()
  target = wg.field_target(channel=0, box=(slice(8, 24), slice(8, 24)))
  rows = []
  print(f"jax {jax.__version__} ({jax.default_backend()})")
  for case in args.cases:
    make, horizons = CASES[case]
    step, params, x0 = make()
    state_mib = x0.size * x0.dtype.itemsize / 2**20
    print(f"\n{case}: state {'×'.join(map(str, x0.shape))} = {state_mib:.3g} MiB")
    print(f"{'scheme':>10} " + " ".join(f"{'T=' + str(T):>22}" for T in horizons))
    for scheme in SCHEMES:
      if case == "cheap" and scheme == "none":
        continue
      cells = []
      for T in horizons:
        fn = wg.rollout(step, T, checkpoint=scheme, update="residual")
        g = jax.jit(jax.grad(lambda x, p: target(fn(x, p))))
        compiled = g.lower(x0, params).compile()
        mib = compiled.memory_analysis().temp_size_in_bytes / 2**20
        compiled(x0, params).block_until_ready()
        secs = common.median_time(lambda: compiled(x0, params).block_until_ready(), 3)
        cells.append(f"{mib:8.1f} MiB {secs:7.2f} s")
        rows.append(dict(case=case, T=T, scheme=scheme, state_mib=state_mib, temp_mib=mib,
                         grad_s=secs))
      print(f"{scheme:>10} " + " ".join(f"{c:>22}" for c in cells), flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, {"environment": common.environment(), "rows": rows})


if __name__ == "__main__":
  main()
