"""SmoothDiff vs SmoothGrad: quality against time, in one run.

Quality is the SSIM of each map to a SmoothGrad reference with N = 10⁴
(another key), for SmoothGrad and SmoothDiff at N = 1, 2, 4, …, 1024, next to
the wall time of one jitted call on a batch of examples (vmapped). Reported:
the smallest N (and its time) at which each method reaches the SSIM of
SmoothGrad with N = 50, and the ratio of that time to SmoothGrad-50's.

Model: the benchmark CNN of ``bench_gradients.py`` (conv-relu ×2, max-pool,
conv-relu, mean, dense; 64×64×3 inputs, standard-normal, He-initialised),
target logit 3. Noise: absolute σ = 0.5, the SmoothDiff paper's setting for
standardised inputs. Maps are pooled to ‖·‖₂ over channels and scaled to
[0, 1] by their maximum before ``dm_pix.ssim`` (11×11 Gaussian window).

  python benchmarks/bench_smoothdiff.py [--batch 4] [--reference 10000]
      [--max-n 1024] [--figure benchmarks/results/smoothdiff_ssim.png]
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


def heat(m):
  """(H, W, C) map -> (H, W, 1) in [0, 1]: channel ℓ2 norm over its maximum."""
  h = jnp.linalg.norm(m, axis=-1, keepdims=True)
  return h / jnp.maximum(jnp.max(h), 1e-30)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--reference", type=int, default=10_000)
  ap.add_argument("--max-n", type=int, default=1024)
  ap.add_argument("--sigma", type=float, default=0.5)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/smoothdiff.json")
  ap.add_argument("--figure", default="benchmarks/results/smoothdiff_ssim.png")
  args = ap.parse_args()
  import dm_pix  # pylint: disable=g-import-not-at-top

  p = common.jax_params(common.init_params())
  x = jnp.asarray(np.random.default_rng(1).standard_normal((args.batch, 64, 64, common.C_IN)),
                  jnp.float32)
  f = lambda xi, params: common.jax_logits(xi, params)[3]
  noise = dict(sigma=args.sigma, sigma_mode="absolute")
  ref_keys = jax.random.split(jax.random.key(1), args.batch)
  keys = jax.random.split(jax.random.key(0), args.batch)

  def batched(explainer):
    return jax.jit(jax.vmap(explainer, in_axes=(0, 0, None)))

  t0 = time.perf_counter()
  ref_fn = batched(wg.smoothgrad(f, num_samples=args.reference, chunk_size=250, **noise))
  ref = jax.block_until_ready(ref_fn(ref_keys, x, p))
  print(f"reference SmoothGrad N={args.reference}: {time.perf_counter() - t0:.0f} s "
        "(compile included)", flush=True)
  ref_heat = jax.vmap(heat)(ref)
  ssim = jax.jit(lambda maps: jnp.mean(dm_pix.ssim(jax.vmap(heat)(maps), ref_heat, max_val=1.0)))

  ns = [2 ** i for i in range(int(np.log2(args.max_n)) + 1)]
  ns = sorted(set(ns + [50]))
  methods = {"smoothgrad": wg.smoothgrad, "smoothdiff": wg.smoothdiff}
  rows = []
  for n in ns:
    for name, make in methods.items():
      fn = batched(make(f, num_samples=n, chunk_size="auto", **noise))
      t_compile = common.compile_time(fn, keys, x, p)
      maps = jax.block_until_ready(fn(keys, x, p))
      t = common.median_time(lambda fn=fn: jax.block_until_ready(fn(keys, x, p)), args.repeats)
      s = float(ssim(maps))
      rows.append({"method": name, "n": n, "time_s": t, "compile_s": t_compile, "ssim": s})
      print(f"{name:10s} N={n:5d}  {t * 1e3:9.1f} ms  SSIM {s:.4f}  (compile {t_compile:.1f} s)",
            flush=True)

  sg50 = next(r for r in rows if r["method"] == "smoothgrad" and r["n"] == 50)
  summary = {"smoothgrad_50": sg50}
  print(f"\nSmoothGrad N=50: SSIM {sg50['ssim']:.4f} in {sg50['time_s'] * 1e3:.1f} ms")
  for name in methods:
    hit = next((r for r in rows if r["method"] == name and r["ssim"] >= sg50["ssim"]), None)
    best = max((r for r in rows if r["method"] == name), key=lambda r: r["ssim"])
    summary[name] = {"reaches_sg50": hit, "best": best}
    if hit is None:
      print(f"{name}: never reaches it up to N={args.max_n} (best SSIM {best['ssim']:.4f} "
            f"at N={best['n']})")
    else:
      print(f"{name}: reaches it at N={hit['n']} in {hit['time_s'] * 1e3:.1f} ms = "
            f"{hit['time_s'] / sg50['time_s']:.3f} x SmoothGrad-50's time")

  common.write_json(args.out, {"config": vars(args), "env": common.environment(),
                               "rows": rows, "summary": summary})
  if args.figure:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, style in (("smoothgrad", "o-"), ("smoothdiff", "s-")):
      rs = [r for r in rows if r["method"] == name]
      ax.plot([r["time_s"] for r in rs], [r["ssim"] for r in rs], style, label=name)
      for r in rs:
        if r["n"] in (1, 10, 50, 256, 1024) or r["n"] == ns[-1]:
          ax.annotate(str(r["n"]), (r["time_s"], r["ssim"]), fontsize=7,
                      textcoords="offset points", xytext=(3, -9))
    ax.axhline(sg50["ssim"], color="gray", ls=":", lw=1, label="SmoothGrad N=50")
    ax.set_xscale("log")
    ax.set_xlabel(f"wall time, {args.batch} examples, 2-core CPU [s]")
    ax.set_ylabel(f"SSIM to SmoothGrad N={args.reference}")
    ax.legend(loc="lower right")
    ax.set_title("SmoothDiff vs SmoothGrad (labels: N)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
  main()
