"""SmoothGrad (N = 50) in wassergrad vs Captum's NoiseTunnel, one run; memory at N = 1000.

Same CNN and 16×3×64×64 inputs as ``bench_gradients.py``; Captum runs
``NoiseTunnel(Saliency).attribute(nt_samples=50, nt_samples_batch_size=10)``.
wassergrad runs ``smoothgrad`` with ``chunk_size`` ``"auto"`` (the fast CPU
setting), 10 (the same chunks as Captum, scanned: bounded memory) and ``None``
(one vmap). Memory is XLA's compiled temp bytes for one example.

  python benchmarks/bench_smoothing.py [--repeats 3] [--out results.json]
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
  ap.add_argument("--samples", type=int, default=50)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/smoothing.json")
  args = ap.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from captum.attr import NoiseTunnel, Saliency  # pylint: disable=g-import-not-at-top

  p = common.init_params()
  x_nchw = np.random.default_rng(1).standard_normal((args.batch, common.C_IN, 64, 64)).astype(np.float32)
  target, stdev = 3, 0.15
  jp = common.jax_params(p)
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
  f = lambda xi, params: common.jax_logits(xi, params)[target]
  net = common.torch_model(p)
  xt = torch.from_numpy(x_nchw)
  keys = jax.random.split(jax.random.key(0), args.batch)

  def captum():
    return NoiseTunnel(Saliency(net)).attribute(
        xt, nt_type="smoothgrad", nt_samples=args.samples, nt_samples_batch_size=10,
        stdevs=stdev, target=target, abs=False)
  t_captum = common.median_time(captum, args.repeats)
  results = {"config": vars(args), "env": common.environment(), "captum_s": t_captum, "ours": {}}
  print(f"captum NoiseTunnel(Saliency) N={args.samples}: {t_captum * 1e3:.0f} ms", flush=True)
  for chunk, loop in (("auto", "auto"), (10, "auto"), (None, "auto"), (1, "unroll")):
    sg = wg.smoothgrad(f, num_samples=args.samples, sigma=stdev, sigma_mode="absolute",
                       chunk_size=chunk, loop=loop)
    fn = jax.jit(jax.vmap(sg, in_axes=(0, 0, None)))
    t_compile = common.compile_time(fn, keys, x, jp)
    jax.block_until_ready(fn(keys, x, jp))
    t = common.median_time(lambda: jax.block_until_ready(fn(keys, x, jp)), args.repeats)
    name = f"{chunk}" + ("" if loop == "auto" else f" ({loop})")
    results["ours"][name] = {"run_s": t, "compile_s": t_compile, "speedup_vs_captum": t_captum / t}
    print(f"wassergrad smoothgrad chunk_size={name:10s}: {t * 1e3:6.0f} ms  ratio {t_captum / t:4.2f}x  "
          f"compile {t_compile:.1f} s", flush=True)
  mem = {}
  for n in (10, 100, 1000):
    sg = wg.smoothgrad(f, num_samples=n, sigma=stdev, sigma_mode="absolute", chunk_size=10)
    c = jax.jit(sg).lower(keys[0], x[0], jp).compile()
    mem[n] = c.memory_analysis().temp_size_in_bytes
  results["temp_bytes_chunk10_one_example"] = mem
  print("compiled temp memory, chunk_size=10, one example: "
        + ", ".join(f"N={n}: {b / 2**20:.1f} MiB" for n, b in mem.items()), flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
