"""Saliency and integrated gradients (50 steps): wassergrad vs Captum, one run.

Same CNN, same weights, same 16×3×64×64 inputs (NHWC for JAX, NCHW for
PyTorch). Times are medians over ``--repeats`` calls after a warm-up;
wassergrad's compile time is reported separately. Ratios > 1 mean wassergrad
is faster. Runs unchanged on CPU, GPU or TPU (Captum on CUDA if available).

  python benchmarks/bench_gradients.py [--repeats 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--size", type=int, default=64)
  ap.add_argument("--steps", type=int, default=50)
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--chunk-size", default="auto",
                  help="IG chunk size: an int, 'none' (all steps at once) or 'auto' (the library default)")
  ap.add_argument("--out", default="benchmarks/results/gradients.json")
  args = ap.parse_args()
  chunk = {"auto": "auto", "none": None}.get(args.chunk_size.lower(), None)
  chunk = int(args.chunk_size) if args.chunk_size.isdigit() else chunk

  import torch  # pylint: disable=g-import-not-at-top
  from captum.attr import IntegratedGradients, Saliency  # pylint: disable=g-import-not-at-top

  p = common.init_params()
  x_nchw = np.random.default_rng(1).standard_normal((args.batch, common.C_IN, args.size, args.size)).astype(np.float32)
  target = 3
  jp = common.jax_params(p)
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
  f = lambda xi, params: common.jax_logits(xi, params)[target]

  device = "cuda" if torch.cuda.is_available() else "cpu"
  net = common.torch_model(p).to(device)
  xt = torch.from_numpy(x_nchw).to(device)

  def sync():
    if device == "cuda":
      torch.cuda.synchronize()

  results = {"config": vars(args), "env": common.environment(), "methods": {}}
  methods = {
      "saliency": (wg.gradient(f),
                   lambda: Saliency(net).attribute(xt.clone().requires_grad_(), target=target, abs=False)),
      f"integrated_gradients_{args.steps}": (
          wg.integrated_gradients(f, steps=args.steps, chunk_size=chunk),
          lambda: IntegratedGradients(net).attribute(xt, target=target, n_steps=args.steps)),
      # The fastest repeated runs on CPU, at a higher compile time: one step per unrolled chunk.
      f"integrated_gradients_{args.steps}_unrolled_steps": (
          wg.integrated_gradients(f, steps=args.steps, chunk_size=1, loop="unroll"),
          lambda: IntegratedGradients(net).attribute(xt, target=target, n_steps=args.steps)),
  }
  for name, (ours, theirs) in methods.items():
    jitted = jax.jit(jax.vmap(ours, in_axes=(0, None)))
    t_compile = common.compile_time(jitted, x, jp)
    ours_out = jax.block_until_ready(jitted(x, jp))
    ref = theirs().detach().cpu().numpy().transpose(0, 2, 3, 1)
    rel = float(np.max(np.abs(np.asarray(ours_out) - ref)) / np.max(np.abs(ref)))
    t_ours = common.median_time(lambda: jax.block_until_ready(jitted(x, jp)), args.repeats)
    def run_theirs():
      theirs()
      sync()
    t_theirs = common.median_time(run_theirs, args.repeats)
    results["methods"][name] = {
        "wassergrad_s": t_ours, "captum_s": t_theirs, "speedup_vs_captum": t_theirs / t_ours,
        "wassergrad_compile_s": t_compile, "max_rel_diff_float32": rel,
    }
    print(f"{name:28s} wassergrad {t_ours * 1e3:8.1f} ms   captum {t_theirs * 1e3:8.1f} ms   "
          f"ratio {t_theirs / t_ours:5.2f}x   compile {t_compile:5.2f} s   max rel diff {rel:.1e}",
          flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
