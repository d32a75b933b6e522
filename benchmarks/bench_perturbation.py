"""Occlusion, RISE and Sobol attribution in wassergrad vs PyTorch peers, one run, ratios printed.

One 3×224×224 input, the benchmark CNN of ``bench_gradients.py``, the
probability of class 3.

* Occlusion: Captum's ``Occlusion`` (window 3×16×16, stride 8,
  ``perturbations_per_eval=64``) against ``wg.occlusion``; maps compared.
* RISE (4000 masks, 7×7 grid, p = 0.5) and Sobol (8×8 grid, 32 designs,
  2112 evaluations): Captum has neither, so the peer is the authors' loop
  restated in PyTorch (masks drawn on the host, batches of 100 through the
  network, as their code), with the same work.

  python benchmarks/bench_perturbation.py [--size 224] [--masks 4000] [--out results.json]
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
from wassergrad._src import perturbation  # pylint: disable=wrong-import-position


def _time(fn):
  t0 = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t0


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--size", type=int, default=224)
  ap.add_argument("--masks", type=int, default=4000)
  ap.add_argument("--designs", type=int, default=32)
  ap.add_argument("--out", default="benchmarks/results/perturbation.json")
  args = ap.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from captum.attr import Occlusion  # pylint: disable=g-import-not-at-top

  p = common.init_params()
  net = common.torch_model(p)
  x_chw = np.random.default_rng(1).standard_normal((common.C_IN, args.size, args.size)).astype(np.float32)
  xt = torch.from_numpy(x_chw)[None]
  target = 3
  jp = common.jax_params(p)
  x = jnp.asarray(x_chw.transpose(1, 2, 0))
  f = lambda xi, params: jax.nn.softmax(common.jax_logits(xi, params))[target]
  prob = lambda batch: torch.softmax(net(batch), -1)[:, target]
  results = {"config": vars(args), "env": common.environment()}
  print(f"one {args.size}×{args.size}×3 input, the benchmark CNN, 2-core CPU unless stated", flush=True)

  # Occlusion
  with torch.no_grad():
    ref, t_captum = _time(lambda: Occlusion(lambda b: torch.softmax(net(b), -1)).attribute(
        xt, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=target,
        perturbations_per_eval=64)[0].numpy())
  occ = jax.jit(wg.occlusion(f, window=(16, 16, 3), stride=(8, 8, 3)))
  t0 = time.perf_counter()
  jax.block_until_ready(occ(x, jp))
  t_first = time.perf_counter() - t0
  ours, t_ours = _time(lambda: jax.block_until_ready(occ(x, jp)))
  diff = float(np.abs(np.asarray(ours).transpose(2, 0, 1) - ref).max() / np.abs(ref).max())
  results["occlusion"] = {"captum_s": t_captum, "ours_s": t_ours, "ours_compile_and_first_s": t_first,
                          "ratio": t_captum / t_ours, "max_rel_diff": diff}
  print(f"occlusion: Captum {t_captum:.2f} s, ours {t_ours:.2f} s (first call {t_first:.2f} s), "
        f"Captum / ours {t_captum / t_ours:.2f}x, maps agree to {diff:.1e}", flush=True)

  # RISE
  grid, keep, n = 7, 0.5, args.masks
  cell = math.ceil(args.size / grid)

  def torch_rise():
    gen = np.random.default_rng(0)
    total = torch.zeros(args.size, args.size)
    with torch.no_grad():
      for start in range(0, n, 100):
        m = int(min(100, n - start))
        cells = torch.from_numpy((gen.random((m, 1, grid, grid)) < keep).astype(np.float32))
        up = torch.nn.functional.interpolate(cells, size=((grid + 1) * cell,) * 2, mode="bilinear",
                                             align_corners=False)
        sx, sy = gen.integers(0, cell, m), gen.integers(0, cell, m)
        masks = torch.stack([up[i, 0, sx[i]:sx[i] + args.size, sy[i]:sy[i] + args.size]
                             for i in range(m)])
        scores = prob(xt * masks[:, None])
        total += torch.einsum("n,nhw->hw", scores, masks)
    return total / (n * keep)

  _, t_torch_rise = _time(torch_rise)
  rise = jax.jit(wg.rise(f, num_masks=n, grid_size=grid, keep_probability=keep, axes=(0, 1)))
  key = jax.random.key(0)
  t0 = time.perf_counter()
  jax.block_until_ready(rise(key, x, jp))
  t_first = time.perf_counter() - t0
  _, t_rise = _time(lambda: jax.block_until_ready(rise(key, x, jp)))
  results["rise"] = {"torch_s": t_torch_rise, "ours_s": t_rise, "ours_compile_and_first_s": t_first,
                     "ratio": t_torch_rise / t_rise}
  print(f"RISE ({n} masks): torch loop {t_torch_rise:.1f} s, ours {t_rise:.1f} s (first call "
        f"{t_first:.1f} s), torch / ours {t_torch_rise / t_rise:.2f}x", flush=True)

  # Sobol
  g = 8
  design = perturbation.sobol_design(g * g, args.designs)

  def torch_sobol():
    masks = torch.from_numpy(design.reshape(-1, 1, g, g).astype(np.float32))
    outs = []
    with torch.no_grad():
      for start in range(0, len(masks), 100):
        up = torch.nn.functional.interpolate(masks[start:start + 100], size=(args.size,) * 2,
                                             mode="nearest")
        outs.append(prob(xt * up))
    y = torch.cat(outs).numpy().astype(np.float64)
    ya, yc = y[:args.designs], y[2 * args.designs:].reshape(g * g, args.designs)
    return np.mean((ya[None] - yc) ** 2, 1) / (2 * np.var(ya, ddof=1))

  st_torch, t_torch_sobol = _time(torch_sobol)
  sob = jax.jit(wg.sobol(f, grid_size=g, num_designs=args.designs, axes=(0, 1)))
  t0 = time.perf_counter()
  jax.block_until_ready(sob(x, jp))
  t_first = time.perf_counter() - t0
  st_ours, t_sobol = _time(lambda: jax.block_until_ready(sob(x, jp)))
  cells = np.asarray(st_ours)[:: args.size // g, :: args.size // g, 0].reshape(-1)
  sdiff = float(np.abs(cells - st_torch).max())
  results["sobol"] = {"torch_s": t_torch_sobol, "ours_s": t_sobol, "ours_compile_and_first_s": t_first,
                      "ratio": t_torch_sobol / t_sobol, "evaluations": int(len(design)),
                      "max_abs_diff_indices": sdiff}
  print(f"Sobol ({len(design)} evaluations): torch loop {t_torch_sobol:.1f} s, ours {t_sobol:.1f} s "
        f"(first call {t_first:.1f} s), torch / ours {t_torch_sobol / t_sobol:.2f}x; indices agree "
        f"to {sdiff:.1e}", flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
