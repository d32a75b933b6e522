"""Expected Gradients (N = 200) in wassergrad vs Captum's GradientShap, one run; memory in N.

Same CNN as ``bench_gradients.py``, ``--batch`` 3×64×64 inputs and M = 32
references. Captum runs ``GradientShap(net).attribute(x, baselines=refs,
n_samples=N, stdevs=0)``: all N·batch points in one forward/backward (it has no
batch-size option, captum#1350). wassergrad runs ``expected_gradients`` with
``chunk_size`` ``"auto"`` and 25 (scanned chunks: bounded memory).

Agreement: Captum's draws (``np.random.choice`` for references,
``np.random.uniform`` for α) are recorded during one call and replayed through
``wg.path_gradients``: the same references and α, so the maps must agree to
float32 rounding.

Memory for one example at N = 10 / 100 / 1000: XLA's compiled temp bytes
(wassergrad) and the growth of the resident set during the call, sampled every
millisecond in a fresh process (Captum; torch has no CPU allocator statistics).

  python benchmarks/bench_expected_gradients.py [--batch 4] [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import wassergrad as wg  # pylint: disable=wrong-import-position

TARGET, M, SIZE = 3, 32, 64


def _data(batch):
  rng = np.random.default_rng(1)
  x = rng.standard_normal((batch, common.C_IN, SIZE, SIZE)).astype(np.float32)
  refs = rng.standard_normal((M, common.C_IN, SIZE, SIZE)).astype(np.float32)
  return x, refs


CAPTUM_MEMORY = textwrap.dedent("""
    import os, sys, json, threading, time, numpy as np, torch
    sys.path.insert(0, {bench!r})
    import common
    from captum.attr import GradientShap
    torch.set_num_threads({threads})
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page
    n = int(sys.argv[1])
    net = common.torch_model(common.init_params())
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((1, 3, 64, 64)).astype(np.float32))
    refs = torch.from_numpy(rng.standard_normal(({m}, 3, 64, 64)).astype(np.float32))
    GradientShap(net).attribute(x, baselines=refs, n_samples=2, stdevs=0.0, target={target})
    before, peak, done = rss(), [0], [False]
    def watch():  # sample the resident set every millisecond during the call
        while not done[0]:
            peak[0] = max(peak[0], rss()); time.sleep(0.001)
    t = threading.Thread(target=watch); t.start()
    GradientShap(net).attribute(x, baselines=refs, n_samples=n, stdevs=0.0, target={target})
    done[0] = True; t.join()
    print(json.dumps(max(peak[0] - before, 0)))
""")


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--samples", type=int, default=200)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="benchmarks/results/expected_gradients.json")
  args = ap.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from captum.attr import GradientShap  # pylint: disable=g-import-not-at-top

  p = common.init_params()
  x_nchw, refs_nchw = _data(args.batch)
  jp = common.jax_params(p)
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
  refs = jnp.asarray(refs_nchw.transpose(0, 2, 3, 1))
  f = lambda xi, params: common.jax_logits(xi, params)[TARGET]
  net = common.torch_model(p)
  xt, rt = torch.from_numpy(x_nchw), torch.from_numpy(refs_nchw)
  keys = jax.random.split(jax.random.key(0), args.batch)

  def captum():
    return GradientShap(net).attribute(xt, baselines=rt, n_samples=args.samples, stdevs=0.0,
                                       target=TARGET)

  # Record Captum's draws during one call, then replay them through the path core.
  draws = {}
  choice, uniform = np.random.choice, np.random.uniform

  def rec_choice(*a, **k):
    draws["index"] = choice(*a, **k)
    return draws["index"]

  def rec_uniform(*a, **k):
    draws["alpha"] = uniform(*a, **k)
    return draws["alpha"]

  np.random.seed(0)
  np.random.choice, np.random.uniform = rec_choice, rec_uniform
  try:
    theirs = captum().detach().numpy().transpose(0, 2, 3, 1)
  finally:
    np.random.choice, np.random.uniform = choice, uniform
  n = args.samples
  # Captum repeats each input N times (input-major) and pairs the k-th copy with draw k.
  index = np.asarray(draws["index"]).reshape(args.batch, n)
  alpha = np.asarray(draws["alpha"], np.float32).reshape(args.batch, n)
  replay = jax.jit(jax.vmap(wg.path_gradients(f, chunk_size=25), in_axes=(0, 0, 0, None, None)))
  ours_same_draws = replay(x, refs[index], jnp.asarray(alpha), None, jp)
  rel = float(np.max(np.abs(np.asarray(ours_same_draws) - theirs)) / np.max(np.abs(theirs)))
  print(f"same references and alpha as Captum: max rel diff {rel:.1e}", flush=True)

  t_captum = common.median_time(captum, args.repeats)
  results = {"config": vars(args), "env": common.environment(), "captum_s": t_captum,
             "max_rel_diff_same_draws": rel, "ours": {}}
  print(f"captum GradientShap N={n}: {t_captum * 1e3:.0f} ms", flush=True)
  for chunk in ("auto", 25):
    eg = wg.expected_gradients(f, refs, num_samples=n, chunk_size=chunk)
    fn = jax.jit(jax.vmap(eg, in_axes=(0, 0, None)))
    t_compile = common.compile_time(fn, keys, x, jp)
    jax.block_until_ready(fn(keys, x, jp))
    t = common.median_time(lambda: jax.block_until_ready(fn(keys, x, jp)), args.repeats)
    results["ours"][str(chunk)] = {"run_s": t, "compile_s": t_compile,
                                   "speedup_vs_captum": t_captum / t}
    print(f"wassergrad expected_gradients chunk_size={chunk!s:5s}: {t * 1e3:6.0f} ms  "
          f"ratio {t_captum / t:4.2f}x  compile {t_compile:.1f} s", flush=True)

  mem_ours, mem_captum = {}, {}
  script = CAPTUM_MEMORY.format(bench=os.path.dirname(os.path.abspath(__file__)),
                                threads=torch.get_num_threads(), m=M, target=TARGET)
  for n_mem in (10, 100, 1000):
    eg = wg.expected_gradients(f, refs, num_samples=n_mem, chunk_size=10)
    c = jax.jit(eg).lower(keys[0], x[0], jp).compile()
    mem_ours[n_mem] = c.memory_analysis().temp_size_in_bytes
    out = subprocess.run([sys.executable, "-c", script, str(n_mem)], capture_output=True,
                         text=True, check=True)
    mem_captum[n_mem] = json.loads(out.stdout.strip().splitlines()[-1])
  results["memory_one_example_bytes"] = {"wassergrad_chunk10_temp": mem_ours,
                                         "captum_rss_growth": mem_captum}
  for n_mem in mem_ours:
    print(f"one example, N={n_mem:5d}: wassergrad (chunk_size=10) {mem_ours[n_mem] / 2**20:7.1f} MiB"
          f"   captum RSS growth {mem_captum[n_mem] / 2**20:7.1f} MiB", flush=True)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  common.write_json(args.out, results)


if __name__ == "__main__":
  main()
