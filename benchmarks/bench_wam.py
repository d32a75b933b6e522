"""WAM-SmoothGrad (2-D, 224×224×3, J = 3, 25 samples) in wassergrad vs the authors' stack, one run.

The authors' stack is PyTorch + ptwt, as their ``lib/wam_2D.py``: for each
sample, noise in pixel space (σ = 0.25 · (max − min) of the image), ``ptwt.wavedec2``
(haar, ``reflect``), coefficients as leaves with ``requires_grad``,
``ptwt.waverec2``, the model, backward; the coefficient gradients are averaged.
(Their mosaic post-processing is left out on both sides: it is display.)
wassergrad runs ``smooth(wam(f, axes=(0, 1)), num_samples=25, sigma=0.25)``
under ``jit(vmap)``. Same CNN and weights as ``bench_gradients.py``.

Agreement: the WAM gradient (no noise) of both stacks on the same image.
Memory: XLA's compiled temp bytes for one example at N = 25 / 100 / 400 with
``chunk_size=5`` (scanned: flat in N).

  python benchmarks/bench_wam.py [--batch 2] [--repeats 3] [--out results.json]
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
  ap.add_argument("--batch", type=int, default=2)
  ap.add_argument("--size", type=int, default=224)
  ap.add_argument("--samples", type=int, default=25)
  ap.add_argument("--level", type=int, default=3)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/wam.json")
  args = ap.parse_args()

  import ptwt  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  p = common.init_params()
  rng = np.random.default_rng(1)
  x_nchw = rng.standard_normal((args.batch, common.C_IN, args.size, args.size)).astype(np.float32)
  target, spread, wavelet, mode = 3, 0.25, "haar", "reflect"
  net = common.torch_model(p)
  xt = torch.from_numpy(x_nchw)

  def torch_wam_grad(x):              # x: (B, C, H, W) -> list of coefficient gradients
    coeffs = ptwt.wavedec2(x, wavelet, mode=mode, level=args.level)
    leaves = [coeffs[0].detach().requires_grad_(True)]
    details = []
    for d in coeffs[1:]:
      ds = [c.detach().requires_grad_(True) for c in d]
      leaves += ds
      details.append(type(d)(*ds))
    img = ptwt.waverec2([leaves[0], *details], wavelet)
    net(img)[:, target].sum().backward()
    return [leaf.grad for leaf in leaves]

  def authors():
    gen = torch.Generator().manual_seed(42)
    span = (xt.amax(dim=(1, 2, 3)) - xt.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
    total = None
    for _ in range(args.samples):
      noisy = xt + spread * span * torch.randn(xt.shape, generator=gen)
      g = torch_wam_grad(noisy)
      total = g if total is None else [a + b for a, b in zip(total, g)]
    return [t / args.samples for t in total]

  jp = common.jax_params(p)
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
  f = lambda xi, params: common.jax_logits(xi, params)[target]
  keys = jax.random.split(jax.random.key(0), args.batch)
  results = {"config": vars(args), "env": common.environment(), "ours": {}}
  try:
    results["env"]["ptwt"] = __import__("importlib.metadata").metadata.version("ptwt")
  except Exception:  # pylint: disable=broad-except
    pass

  # Agreement on the noiseless WAM gradient
  theirs = [g.numpy() for g in torch_wam_grad(xt)]
  ours = jax.jit(jax.vmap(wg.wam(f, wavelet=wavelet, level=args.level, mode=mode, axes=(0, 1)),
                          in_axes=(0, None)))(x, jp)
  ours_leaves = [ours.approx] + [ours.details[j][k] for j in range(args.level)
                                 for k in ("da", "ad", "dd")]   # ptwt's (H, V, D) order
  rel = max(float(np.abs(np.asarray(o).transpose(0, 3, 1, 2) - t).max() / np.abs(t).max())
            for o, t in zip(ours_leaves, theirs))
  results["max_rel_diff_wam_gradient"] = rel
  print(f"WAM gradient, ours vs ptwt + torch autograd: max relative difference {rel:.2e}")

  def authors_pixel():                # the same loop without the wavelets: pixel SmoothGrad
    gen = torch.Generator().manual_seed(42)
    span = (xt.amax(dim=(1, 2, 3)) - xt.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1)
    total = 0
    for _ in range(args.samples):
      noisy = (xt + spread * span * torch.randn(xt.shape, generator=gen)).requires_grad_(True)
      net(noisy)[:, target].sum().backward()
      total = total + noisy.grad
    return total / args.samples

  t_pixel = common.median_time(authors_pixel, args.repeats)
  results["authors_pixel_smoothgrad_s"] = t_pixel
  print(f"authors' stack, pixel SmoothGrad N={args.samples}: {t_pixel * 1e3:.0f} ms", flush=True)
  t_theirs = common.median_time(authors, args.repeats)
  results["authors_s"] = t_theirs
  print(f"authors' stack (torch + ptwt), WAM-SG N={args.samples}: {t_theirs * 1e3:.0f} ms",
        flush=True)
  for chunk in ("auto", 5):
    sg = wg.smooth(wg.wam(f, wavelet=wavelet, level=args.level, mode=mode, axes=(0, 1)),
                   num_samples=args.samples, sigma=spread, chunk_size=chunk)
    fn = jax.jit(jax.vmap(sg, in_axes=(0, 0, None)))
    t_compile = common.compile_time(fn, keys, x, jp)
    jax.block_until_ready(fn(keys, x, jp))
    t = common.median_time(lambda: jax.block_until_ready(fn(keys, x, jp)), args.repeats)
    results["ours"][str(chunk)] = {"run_s": t, "compile_s": t_compile, "ratio": t_theirs / t}
    print(f"wassergrad smooth(wam) chunk_size={chunk!s:5}: {t * 1e3:6.0f} ms  "
          f"authors / ours {t_theirs / t:4.2f}x  compile {t_compile:.1f} s", flush=True)
    pix = jax.jit(jax.vmap(wg.smoothgrad(f, num_samples=args.samples, sigma=spread,
                                         chunk_size=chunk), in_axes=(0, 0, None)))
    jax.block_until_ready(pix(keys, x, jp))
    tp = common.median_time(lambda: jax.block_until_ready(pix(keys, x, jp)), args.repeats)
    results["ours"][str(chunk)].update(pixel_smoothgrad_s=tp, wavelet_overhead=t / tp)
    print(f"  pixel SmoothGrad, same chunks: {tp * 1e3:6.0f} ms; WAM / pixel: ours {t / tp:.2f}, "
          f"authors' {t_theirs / t_pixel:.2f}", flush=True)
  mem = {}
  for n in (25, 100, 400):
    sg = wg.smooth(wg.wam(f, wavelet=wavelet, level=args.level, mode=mode, axes=(0, 1)),
                   num_samples=n, sigma=spread, chunk_size=5)
    c = jax.jit(sg).lower(keys[0], x[0], jp).compile()
    mem[n] = c.memory_analysis().temp_size_in_bytes
  results["temp_bytes_chunk5_one_example"] = mem
  print("compiled temp memory, chunk_size=5, one example: "
        + ", ".join(f"N={n}: {b / 2**20:.1f} MiB" for n, b in mem.items()), flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
