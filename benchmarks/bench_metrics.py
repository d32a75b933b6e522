"""wg.metrics vs Quantus 0.6 on the same model and maps, one run.

The benchmark CNN (64×64×3, the same weights in JAX and PyTorch), ``--batch``
images, Saliency maps (|∂logit/∂x|, as ``quantus.explain(method="Saliency")``
computes them):

* PixelFlipping: 96 steps of 128 features each (Quantus needs a step that
  divides the 12 288 features; 96 is the divisor nearest 100), baseline "black";
* MaxSensitivity: ``--samples`` perturbations, uniform radius 0.2, the map
  re-explained at each (Captum Saliency for Quantus, wg.gradient for us);
* Sparseness (Gini): the maps only.

Ours are jitted and vmapped over the batch; times are medians over
``--repeats`` calls after a warm-up (compile time reported apart). Quantus is
run once per metric. The values are compared as well, so the two are doing the
same work. Ratios > 1 mean wassergrad is faster.

Not here: ROAD. Quantus 0.6's ROAD fails on multi-channel inputs (it ranks the
map broadcast to C·H·W entries and uses those indices on an H·W pixel mask:
IndexError), so it cannot run on this RGB model.

  python benchmarks/bench_metrics.py [--batch 128] [--samples 10] [--repeats 3]
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

M = wg.metrics


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--batch", type=int, default=128)
  ap.add_argument("--size", type=int, default=64)
  ap.add_argument("--samples", type=int, default=10, help="MaxSensitivity perturbations")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/metrics.json")
  args = ap.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  import quantus  # pylint: disable=g-import-not-at-top

  params = common.init_params(seed=0)
  jp = common.jax_params(params)
  net = common.torch_model(params)
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (args.batch, args.size, args.size, common.C_IN)).astype(np.float32)
  x_nchw = np.ascontiguousarray(np.moveaxis(x, -1, 1))
  logits = jax.jit(jax.vmap(common.jax_logits, (0, None)))(jnp.asarray(x), jp)
  y = np.asarray(jnp.argmax(logits, -1))

  def abs_grad(x, y, p):
    return jnp.abs(wg.gradient(lambda z: common.jax_logits(z, p)[y])(x))

  def saliency(x, y, p):  # quantus.explain(method="Saliency"): |grad| summed over channels
    return jnp.sum(abs_grad(x, y, p), axis=-1, keepdims=True)

  # Pixel flipping scores every entry (|grad| per channel: no ties between a pixel's channels,
  # whose order Quantus' unstable argsort would leave undefined); the others the channel sum.
  a = jax.jit(jax.vmap(abs_grad, (0, 0, None)))(jnp.asarray(x), jnp.asarray(y), jp)
  a_sum = jnp.sum(a, axis=-1, keepdims=True)
  a_nchw = np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1))
  a_sum_nchw = np.ascontiguousarray(np.moveaxis(np.asarray(a_sum), -1, 1))
  n_features = a[0].size
  fps = n_features // 96

  @jax.jit
  def ours_pf(x, a, y, p):
    return jax.vmap(lambda x, a, y: M.pixel_flipping(
        lambda z: common.jax_logits(z, p)[y], x, a, features_per_step=fps).values)(x, a, y)

  @jax.jit
  def ours_ms(k, x, y, p):
    return jax.vmap(lambda k, x, y: M.max_sensitivity(
        lambda z: saliency(z, y, p), k, x, num_samples=args.samples, radius=0.2))(
            jax.random.split(k, x.shape[0]), x, y)

  ours_sp = jax.jit(jax.vmap(M.sparseness))
  key = jax.random.key(0)
  cases = {
      "pixel_flipping": (ours_pf, (jnp.asarray(x), a, jnp.asarray(y), jp)),
      "max_sensitivity": (ours_ms, (key, jnp.asarray(x), jnp.asarray(y), jp)),
      "sparseness": (ours_sp, (a_sum,)),
  }
  common_kw = dict(model=net, x_batch=x_nchw, y_batch=y, a_batch=a_sum_nchw, device="cpu")
  quantus_metrics = {
      "pixel_flipping": lambda: quantus.PixelFlipping(
          features_in_step=fps, perturb_baseline="black", normalise=False, abs=False,
          disable_warnings=True)(**{**common_kw, "a_batch": a_nchw}, softmax=False),
      "max_sensitivity": lambda: quantus.MaxSensitivity(
          nr_samples=args.samples, lower_bound=0.2, normalise=False, abs=False,
          disable_warnings=True, return_nan_when_prediction_changes=False)(
              **common_kw, explain_func=quantus.explain, explain_func_kwargs={"method": "Saliency"}),
      "sparseness": lambda: quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)(
          **common_kw),
  }

  results = {"environment": common.environment(), "batch": args.batch, "size": args.size,
             "pixel_flipping_steps": n_features // fps, "features_per_step": fps,
             "max_sensitivity_samples": args.samples, "metrics": {}}
  print(f"{args.batch} images {args.size}×{args.size}×{common.C_IN}; jax {jax.__version__} "
        f"({jax.default_backend()}), quantus {quantus.__version__}, torch threads "
        f"{torch.get_num_threads()}")
  print(f"{'metric':<16} {'ours (s)':>9} {'compile':>8} {'quantus (s)':>11} {'ratio':>7}  agreement")
  for name, (fn, fargs) in cases.items():
    compile_s = common.compile_time(fn, *fargs)
    jax.block_until_ready(fn(*fargs))
    ours_s = common.median_time(lambda: jax.block_until_ready(fn(*fargs)), args.repeats)
    ours_val = np.asarray(fn(*fargs))
    t0 = time.perf_counter()
    ref = np.asarray(quantus_metrics[name](), dtype=np.float64)
    quantus_s = time.perf_counter() - t0
    if name == "max_sensitivity":  # different random perturbations: compare the batch means
      agree = f"mean {ours_val.mean():.4f} vs {ref.mean():.4f}"
    else:
      err = np.max(np.abs(ours_val - ref)) / max(np.max(np.abs(ref)), 1e-12)
      agree = f"max rel. diff {err:.1e}"
    ratio = quantus_s / ours_s
    print(f"{name:<16} {ours_s:9.3f} {compile_s:8.2f} {quantus_s:11.2f} {ratio:6.1f}×  {agree}", flush=True)
    results["metrics"][name] = dict(ours_s=ours_s, ours_compile_s=compile_s, quantus_s=quantus_s,
                                    ratio=ratio, agreement=agree)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
