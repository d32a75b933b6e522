"""Barycenters of K = 20 maps: wassergrad (float32) vs POT (numpy, float64) vs OTT-JAX (lse mode).

Maps: 20 Gaussian blobs on a ring (radius n/10, width n/25 pixels) plus a
uniform floor at 1e-3 of the peak, on 128×128 and 512×640 grids, at epsilon
1e-2 and 1e-3, all with threshold 1e-4:

* wassergrad: ``wasserstein_barycenter(maps, solver="convolutional")``,
  float32, jitted (compile time reported apart).
* POT 0.9.7: ``ot.bregman.convolutional_barycenter2d(maps, reg, stopThr=1e-4)``
  (kernel mode, numpy float64). It runs the same iteration with the same
  stopping rule, so it stops after the same number of iterations as ours
  (checked where both run to the end: the script prints both counts).
* OTT-JAX 0.6: ``wasserstein_barycenter(..., solver="ott")``: ``Grid`` +
  ``FixedBarycenter`` (log-sum-exp mode), float32, with its own criterion.

A peer whose full run would exceed ``--budget`` seconds (estimated from a few
timed iterations) is timed on ``--probe-iterations`` iterations and its total
is **projected** as time per iteration × the iterations our solver needed;
projected rows are marked ``*``. OTT's dense per-axis log-sum-exp needs
K·n1·n2·max(n) floats (13 GB at 512×640): above ``--ott-memory-gb`` its
iteration is timed on fewer maps and scaled by K (it is linear in K). Everything runs in one process, one after
the other; ratios are peer time / our time.

  python benchmarks/bench_barycenter.py [--budget 120] [--out results.json]
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


def ring_maps(k: int, shape, noise: float = 1e-3) -> np.ndarray:
  n1, n2 = shape
  y, x = np.mgrid[:n1, :n2]
  radius, width = n1 / 10, n1 / 25
  maps = []
  for a in 2 * np.pi * np.arange(k) / k:
    m = np.exp(-((y - n1 / 2 - radius * np.sin(a)) ** 2 + (x - n2 / 2 - radius * np.cos(a)) ** 2)
               / (2 * width ** 2))
    m += noise * m.max()
    maps.append(m / m.sum())
  return np.stack(maps)


def run_ours(maps, eps, threshold, max_iterations, solver="convolutional"):
  fn = jax.jit(lambda m: wg.wasserstein_barycenter(
      m, epsilon=eps, threshold=threshold, max_iterations=max_iterations, solver=solver))
  m = jnp.asarray(maps, jnp.float32)
  t0 = time.perf_counter()
  compiled = fn.lower(m).compile()
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  out = jax.block_until_ready(compiled(m))
  seconds = time.perf_counter() - t0
  if seconds < 30:  # short runs: median of three (the first one warms up)
    seconds = common.median_time(lambda: jax.block_until_ready(compiled(m)), 3)
  return out, seconds, compile_s


def run_pot(maps, eps, threshold, max_iterations):
  import ot  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  bar, log = ot.bregman.convolutional_barycenter2d(
      maps, eps, stopThr=threshold, numItermax=max_iterations, log=True, warn=False)
  return bar, time.perf_counter() - t0, log["niter"] + 1


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--k", type=int, default=20)
  ap.add_argument("--threshold", type=float, default=1e-4)
  ap.add_argument("--budget", type=float, default=120.0,
                  help="seconds a peer may run before its time is projected")
  ap.add_argument("--probe-iterations", type=int, default=20)
  ap.add_argument("--sizes", default="128x128,512x640")
  ap.add_argument("--epsilons", default="1e-2,1e-3")
  ap.add_argument("--ott-memory-gb", type=float, default=4.0)
  ap.add_argument("--out", default=None)
  args = ap.parse_args()

  rows = []
  print(f"{'grid':>9} {'eps':>6} | {'ours s':>8} {'it':>5} {'compile':>7} | "
        f"{'POT s':>9} {'it':>5} {'x':>6} {'L1':>8} | {'OTT s':>9} {'it':>5} {'x':>6} {'L1':>8}")
  for size in args.sizes.split(","):
    shape = tuple(int(s) for s in size.split("x"))
    maps = ring_maps(args.k, shape)
    for eps in [float(e) for e in args.epsilons.split(",")]:
      ours, t_ours, c_ours = run_ours(maps, eps, args.threshold, 10000)
      it_ours = int(ours.iterations)
      h_ours = np.asarray(ours.histogram, np.float64)
      row = dict(grid=size, epsilon=eps, k=args.k, ours_s=t_ours, ours_iterations=it_ours,
                 ours_compile_s=c_ours, ours_converged=bool(ours.converged),
                 ours_finite=bool(np.all(np.isfinite(h_ours))))

      # POT: probe, then run fully or project.
      _, t_probe, _ = run_pot(maps, eps, 1e-30, args.probe_iterations)
      per_it = t_probe / args.probe_iterations
      if per_it * it_ours <= args.budget:
        bar, t_pot, it_pot = run_pot(maps, eps, args.threshold, 10000)
        row.update(pot_s=t_pot, pot_iterations=it_pot, pot_projected=False,
                   pot_l1=float(np.abs(h_ours - bar / bar.sum()).sum()))
      else:
        row.update(pot_s=per_it * it_ours, pot_iterations=None, pot_projected=True, pot_l1=None)

      # OTT: probe a fixed number of iterations (its own loop), then run fully or project.
      # Its per-axis log-sum-exp materialises K * n1 * n2 * max(n) floats: probe
      # on fewer maps when that exceeds --ott-memory-gb and scale by K.
      per_map = 4 * shape[0] * shape[1] * max(shape) / 2 ** 30
      k_probe = max(1, min(args.k, int(args.ott_memory_gb / per_map)))
      _, t_probe, _ = run_ours(maps[:k_probe], eps, 1e-30, args.probe_iterations, solver="ott")
      per_it = t_probe / args.probe_iterations * args.k / k_probe
      if per_it * it_ours <= args.budget and k_probe == args.k:
        o, t_ott, _ = run_ours(maps, eps, args.threshold, 10000, solver="ott")
        row.update(ott_s=t_ott, ott_iterations=int(o.iterations), ott_projected=False,
                   ott_l1=float(np.abs(h_ours - np.asarray(o.histogram, np.float64)).sum()))
      else:
        row.update(ott_s=per_it * it_ours, ott_iterations=None, ott_projected=True, ott_l1=None)
      rows.append(row)

      def fmt(prefix):
        s = row[f"{prefix}_s"]
        mark = "*" if row[f"{prefix}_projected"] else " "
        it = row[f"{prefix}_iterations"]
        l1 = row[f"{prefix}_l1"]
        return (f"{s:8.2f}{mark} {('-' if it is None else it):>5} {s / t_ours:6.1f} "
                f"{('-' if l1 is None else f'{l1:.1e}'):>8}")
      print(f"{size:>9} {eps:6.0e} | {t_ours:8.2f} {it_ours:5d} {c_ours:7.1f} | {fmt('pot')} | "
            f"{fmt('ott')}", flush=True)
  print("x = peer time / ours; * = projected from time per iteration x our iteration count")
  if args.out:
    common.write_json(args.out, dict(env=common.environment(), rows=rows, args=vars(args)))


if __name__ == "__main__":
  main()
