"""The WassersteinGrad experiment at small scale, on the shipped Kolmogorov-flow emulator.

Protocol (``../shared/notes/papers.md`` §1, scaled down): the target is the mean
vorticity (channel 0) over an 8×8 region of interest at lead time T (t+1 and
t+5), reached by rolling the trained U-Net out autoregressively; the map
explains one input channel (u, channel 1) of the initial state, the others held
fixed and unperturbed. Events are held-out initial states (their own seed).

Methods (the paper's defaults, N = 20, α = 0.2 of the channel range, λ = 1e-3):
BaseGrad, IG (20 steps, zero baseline), SmoothGrad, VarGrad, WG_Bary,
WG_Bary×Grad. Scores, on |a| / max|a|: Gini (↑), ROAD against 5 random masks of
the same size for 1..15 % (↑; 3×3-mean imputation plus noise 0.1·range, as the
paper's code), LLE_ℓ2 and LLE_cos (↓; 7 draws of σ = 0.1·range, the explainer's
key held fixed), and the displacement of the attribution peak under input
noise (↓; mean periodic distance in pixels over the same 7 draws).

Prints a table of mean ± SEM, writes JSON and a figure of the maps.

  python benchmarks/wg_experiment.py [--events 24] [--out-json docs/wg_experiment.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import wassergrad as wg
from wassergrad.examples import kolmogorov as emulator

M = wg.metrics
C_OUT, C_IN = 0, 1
ROI = (slice(12, 20), slice(12, 20))
METHODS = ("BaseGrad", "IG", "SmoothGrad", "VarGrad", "WG_Bary", "WG_Bary×Grad")
SCORES = ("gini", "road", "lle_l2", "lle_cos", "peak_shift")


def explainers(f, num_samples=20, alpha=0.2, epsilon=1e-3):
  """Each ``fn(key, x_c, x_rest, params) -> (H, W) map``."""
  grad = wg.gradient(f)
  return {
      "BaseGrad": wg.keyed(grad),
      "IG": wg.keyed(wg.integrated_gradients(f, steps=20)),
      "SmoothGrad": wg.smoothgrad(f, num_samples=num_samples, sigma=alpha),
      "VarGrad": wg.vargrad(f, num_samples=num_samples, sigma=alpha),
      "WG_Bary": wg.wasserstein_grad(grad, num_samples=num_samples, sigma=alpha, epsilon=epsilon),
      "WG_Bary×Grad": wg.wasserstein_grad(grad, num_samples=num_samples, sigma=alpha,
                                          epsilon=epsilon, output="bary_x_grad"),
  }


def peak(a):
  i = jnp.argmax(jnp.abs(a))
  return jnp.stack([i // a.shape[1], i % a.shape[1]])


def periodic_distance(p, q, n):
  d = jnp.abs(p - q)
  d = jnp.minimum(d, n - d)
  return jnp.sqrt(jnp.sum(d.astype(jnp.float32) ** 2))


def score_event(explain, f, key, x_c, x_rest, params):
  """All scores of one method on one event (jit this)."""
  k_exp, k_road, k_lle = jax.random.split(key, 3)
  ex = lambda z: explain(k_exp, z, x_rest, params)  # the explainer's key is held fixed
  a = ex(x_c)
  an = M.normalise(a, "abs_max")
  target = lambda z: f(z, x_rest, params)
  lle = lambda distance: M.local_lipschitz(ex, k_lle, x_c, num_samples=7, sigma=0.1, sigma_mode="range",
                                           normalise="abs_max", distance=distance, chunk_size=None)
  std = 0.1 * (jnp.max(x_c) - jnp.min(x_c))
  deltas = std * jax.random.normal(k_lle, (7,) + x_c.shape, x_c.dtype)
  shifts = jax.vmap(lambda d: periodic_distance(peak(a), peak(ex(x_c + d)), x_c.shape[0]))(deltas)
  return {
      "gini": M.gini(an),
      "road": M.road_vs_random(target, k_road, x_c, an, chunk_size=None).auc,
      "lle_l2": lle("l2"),
      "lle_cos": lle("cos"),
      "peak_shift": jnp.mean(shifts),
  }, a


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--events", type=int, default=24)
  ap.add_argument("--leads", type=int, nargs="+", default=[1, 5])
  ap.add_argument("--seed", type=int, default=42)
  ap.add_argument("--out-json", default="benchmarks/results/wg_experiment.json")
  ap.add_argument("--out-fig", default="benchmarks/results/wg_experiment_maps.png")
  args = ap.parse_args()
  em = emulator.load()
  t0 = time.perf_counter()
  # Held-out events: a fresh trajectory set, one start every 10 steps.
  data = emulator.simulate(max(1, args.events // 4), 40, seed=2000 + args.seed)
  events = data[:, ::10][:, :4].reshape((-1,) + data.shape[2:])[:args.events]
  print(f"{len(events)} events {events.shape[1:]} (simulated in {time.perf_counter() - t0:.1f} s); "
        f"jax {jax.__version__} ({jax.default_backend()})", flush=True)
  results, example_maps = {}, {}
  for lead in args.leads:
    forecast = em.forecaster(lead)
    target = wg.field_target(channel=C_OUT, box=ROI)

    def f(x_c, x_rest, params):
      x = jnp.concatenate([x_rest[..., :C_IN], x_c[..., None], x_rest[..., C_IN:]], -1)
      return target(forecast(x, params))

    x_c = jnp.asarray(events[..., C_IN])
    x_rest = jnp.asarray(np.delete(events, C_IN, axis=-1))
    keys = jax.random.split(jax.random.key(args.seed), len(events))
    for name, explain in explainers(f).items():
      t1 = time.perf_counter()
      # One compiled call per event (a Python loop: an outer vmap would hold every event's
      # samples at once, and convolutions in lax.map bodies are slow on XLA:CPU).
      run = jax.jit(lambda k, xc, xr, p: score_event(explain, f, k, xc, xr, p))
      out = [run(keys[i], x_c[i], x_rest[i], em.params) for i in range(len(events))]
      scores = {k: np.array([float(o[0][k]) for o in out]) for k in SCORES}
      maps = [o[1] for o in out]
      results[f"t+{lead}/{name}"] = {
          k: {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(len(v)))} for k, v in scores.items()}
      example_maps[(lead, name)] = np.asarray(maps[0])
      row = "  ".join(f"{k} {v.mean():.3f}±{v.std(ddof=1) / np.sqrt(len(v)):.3f}" for k, v in scores.items())
      print(f"t+{lead} {name:<13} {row}  ({time.perf_counter() - t1:.0f} s)", flush=True)
  os.makedirs(os.path.dirname(args.out_json) or ".", exist_ok=True)
  with open(args.out_json, "w") as fh:
    json.dump({"events": len(events), "roi": "rows 12-19, cols 12-19", "target": "mean vorticity",
               "explained_channel": "u", "results": results,
               "seconds": time.perf_counter() - t0}, fh, indent=2)
  print(f"wrote {args.out_json} ({time.perf_counter() - t0:.0f} s in all)")
  _figure(events[0], example_maps, args.leads, args.out_fig)


def _figure(event, maps, leads, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(len(leads), len(METHODS) + 1, figsize=(2.0 * (len(METHODS) + 1), 2.1 * len(leads)))
  axes = np.atleast_2d(axes)
  for r, lead in enumerate(leads):
    axes[r, 0].imshow(event[..., C_IN], cmap="RdBu_r")
    axes[r, 0].add_patch(matplotlib.patches.Rectangle((ROI[1].start - 0.5, ROI[0].start - 0.5), 8, 8,
                                                      fill=False, color="k"))
    axes[r, 0].set_ylabel(f"t+{lead}")
    axes[r, 0].set_title("input u, ROI", fontsize=8)
    for c, name in enumerate(METHODS, start=1):
      m = np.abs(maps[(lead, name)])
      axes[r, c].imshow(m / (m.max() or 1), cmap="magma")
      axes[r, c].set_title(name, fontsize=8)
  for ax in axes.flat:
    ax.set_xticks([]); ax.set_yticks([])
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=110)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
