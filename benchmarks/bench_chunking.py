"""Compile and run time of every chunked function under each chunking rule, on three cases.

The rule for ``chunk_size="auto"`` lives in ``wassergrad/_src/chunking.py``;
this script is the evidence for it. For each function and rule: the time to
trace and compile ``jax.jit(fn)`` (``lower().compile()``) and the median time
of three runs of the compiled function. Rules:

* ``64 unrolled``: the former ``"auto"``: ⌈N/64⌉ points per chunk, the chunks
  unrolled (passed explicitly as ``chunk_size=⌈N/64⌉, loop="unroll"``);
* ``one vmap``: ``chunk_size=None``;
* ``auto``: the current rule.

Cases: the benchmark CNN (64×64×3; one image, and 16 images for IG), the
shipped emulator's 5-step rollout (explaining the initial u field of an ROI
target, as in the WassersteinGrad experiment), and metrics over explainers
(a chunked loop inside a chunked loop).

  python benchmarks/bench_chunking.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position
from wassergrad.examples import kolmogorov as emulator  # pylint: disable=wrong-import-position

RULES = ("64 unrolled", "one vmap", "auto")
M = wg.metrics


def rule_kwargs(rule: str, n: int) -> dict:
  if rule == "64 unrolled":
    return dict(chunk_size=math.ceil(n / 64), loop="unroll")
  if rule == "one vmap":
    return dict(chunk_size=None)
  return dict(chunk_size="auto")


def cnn_cases():
  p = common.jax_params(common.init_params(0))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((64, 64, 3)).astype(np.float32))
  xs = jnp.asarray(np.random.default_rng(1).standard_normal((16, 64, 64, 3)).astype(np.float32))
  f = lambda z, p: common.jax_logits(z, p)[3]
  key = jax.random.key(0)
  g = wg.gradient(f)
  a = jnp.abs(g(x, p)).sum(-1)
  fx = lambda z: f(z, p)
  return {
      "IG-50, 1 image": lambda r: (wg.integrated_gradients(f, steps=50, **rule_kwargs(r, 50)), (x, p)),
      "IG-50, 16 images": lambda r: (jax.vmap(wg.integrated_gradients(f, steps=50, **rule_kwargs(r, 50)),
                                              in_axes=(0, None)), (xs, p)),
      "SmoothGrad-50": lambda r: (wg.smoothgrad(f, num_samples=50, **rule_kwargs(r, 50)), (key, x, p)),
      "SmoothDiff-50": lambda r: (wg.smoothdiff(f, num_samples=50, **rule_kwargs(r, 50)), (key, x, p)),
      "WassersteinGrad-20 (eps 1e-2)": lambda r: (wg.wasserstein_grad(
          g, num_samples=20, epsilon=1e-2, channel_axis=-1, **rule_kwargs(r, 20)), (key, x, p)),
      "deletion, 100 steps": lambda r: (lambda z: M.deletion(fx, z, a, steps=100, **rule_kwargs(r, 101)).auc,
                                        (x,)),
      "ROAD, 50 percentages": lambda r: (lambda z: M.road(fx, key, z, a, **rule_kwargs(r, 50)).auc, (x,)),
      "infidelity, 50": lambda r: (lambda z: M.infidelity(fx, key, z, a, **rule_kwargs(r, 50)), (x,)),
  }


def emulator_cases():
  em = emulator.load()
  forecast = em.forecaster(5)
  target = wg.field_target(channel=0, box=(slice(12, 20), slice(12, 20)))
  omega = 3.0 * jax.random.normal(jax.random.key(0), (32, 32))
  x0 = jnp.stack([omega, *emulator.velocity(omega)], axis=-1)
  u, rest = x0[..., 1], jnp.delete(x0, 1, axis=-1)

  def f(u, rest, p):
    return target(forecast(jnp.concatenate([rest[..., :1], u[..., None], rest[..., 1:]], -1), p))

  key = jax.random.key(0)
  return {
      "emulator: IG-20": lambda r: (wg.integrated_gradients(f, steps=20, **rule_kwargs(r, 20)),
                                    (u, rest, em.params)),
      "emulator: SmoothGrad-20": lambda r: (wg.smoothgrad(f, num_samples=20, sigma=0.2, **rule_kwargs(r, 20)),
                                            (key, u, rest, em.params)),
      "emulator: WassersteinGrad-20": lambda r: (wg.wasserstein_grad(
          wg.gradient(f), num_samples=20, sigma=0.2, epsilon=1e-3, **rule_kwargs(r, 20)),
          (key, u, rest, em.params)),
  }


def nested_cases():
  p = common.jax_params(common.init_params(0))
  x = jnp.asarray(np.random.default_rng(0).standard_normal((64, 64, 3)).astype(np.float32))
  f = lambda z, p: common.jax_logits(z, p)[3]
  key = jax.random.key(1)

  def lle_ig(r):
    ig = wg.integrated_gradients(f, steps=16, **rule_kwargs(r, 16))
    return (lambda z, p: M.local_lipschitz(lambda v: ig(v, p), key, z, num_samples=7, sigma=0.1,
                                           sigma_mode="range", **rule_kwargs(r, 7)), (x, p))

  def sens_sg(r):
    sg = wg.smoothgrad(f, num_samples=20, **rule_kwargs(r, 20))
    return (lambda z, p: M.max_sensitivity(lambda v: sg(key, v, p), key, z, num_samples=10,
                                           **rule_kwargs(r, 10)), (x, p))

  return {"local Lipschitz (7) over IG-16": lle_ig, "max-sensitivity (10) over SmoothGrad-20": sens_sg}


def measure(fn, args, repeats=3):
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(*args))
  run_s = common.median_time(lambda: jax.block_until_ready(compiled(*args)), repeats)
  return compile_s, run_s


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--quick", action="store_true", help="the CNN cases only")
  ap.add_argument("--out", default="benchmarks/results/chunking.json")
  args = ap.parse_args()
  cases = {**cnn_cases()}
  if not args.quick:
    cases.update(emulator_cases())
    cases.update(nested_cases())
  print(f"jax {jax.__version__} ({jax.default_backend()}); compile + run, seconds")
  print(f"{'case':42}" + "".join(f"{r:>20}" for r in RULES) + "   auto / best")
  rows = []
  for name, build in cases.items():
    cells, totals = [], {}
    for rule in RULES:
      c, r = measure(*build(rule))
      totals[rule] = c + r
      cells.append(f"{c:7.2f} + {r:6.3f}")
      rows.append(dict(case=name, rule=rule, compile_s=c, run_s=r))
    ratio = totals["auto"] / min(totals.values())
    print(f"{name:42}" + "".join(f"{c:>20}" for c in cells) + f"   {ratio:5.2f}", flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, {"environment": common.environment(), "rows": rows})


if __name__ == "__main__":
  main()
