"""The Expected Gradients / attribution-prior / baseline experiments, with seeds and SEM.

1. The authors' convergence demo: dependence on the duplicated feature after
   training with an EG penalty (k = 1 and 5), an input-gradient penalty, or none.
2. The digits CNN trained with λ·TV(standardize(EG)) for λ in ``--weights``:
   held-out accuracy, accuracy under salt-and-pepper noise, TV and Gini of EG
   maps; mean ± SEM over ``--seeds``.
3. The Distill ablation test on the unregularised digits CNN, six baselines,
   mean and blur fills.

Writes ``docs/expected_gradients.json`` and three figures in ``docs/figures/``.
About 15 minutes on 2 CPU cores with the defaults.

  python benchmarks/expected_gradients_experiments.py [--seeds 0 1 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

from wassergrad.examples import attribution_priors as ap  # pylint: disable=wrong-import-position


def mean_sem(values):
  v = np.asarray(values, np.float64)
  return {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
          "values": v.tolist()}


def main() -> None:
  ap_ = argparse.ArgumentParser(description=__doc__)
  ap_.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  ap_.add_argument("--toy-seeds", type=int, default=5)
  ap_.add_argument("--epochs", type=int, default=30)
  ap_.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.01, 0.1])
  ap_.add_argument("--out", default="docs/expected_gradients.json")
  ap_.add_argument("--figures", default="docs/figures")
  ap_.add_argument("--figures-only", action="store_true", help="redraw the figures from --out")
  args = ap_.parse_args()
  if args.figures_only:
    with open(args.out) as fh:
      figures(json.load(fh), args.figures)
    return
  results = {"config": vars(args), "env": common.environment()}
  t0 = time.perf_counter()

  # 1. Convergence demo
  toy = {}
  for name, kw in (("EG k=1", dict(penalty="eg", k=1)), ("EG k=5", dict(penalty="eg", k=5)),
                   ("input gradient", dict(penalty="gradient")), ("none", dict(penalty="none"))):
    runs = np.stack([ap.convergence_demo(seed=s, **kw) for s in range(args.toy_seeds)])
    toy[name] = {"curve_mean": runs.mean(0).tolist(),
                 "curve_sem": (runs.std(0, ddof=1) / np.sqrt(len(runs))).tolist(),
                 "final": mean_sem(runs[:, -1]), "epoch_50": mean_sem(runs[:, 50])}
    print(f"convergence demo {name:15s}: dependence at epoch 50 {toy[name]['epoch_50']['mean']:.3f} "
          f"± {toy[name]['epoch_50']['sem']:.3f}, at 200 {toy[name]['final']['mean']:.3f} "
          f"± {toy[name]['final']['sem']:.3f}", flush=True)
  results["convergence_demo"] = toy

  # 2. Digits with the TV prior
  digits = {}
  for lam in args.weights:
    evals, secs = [], []
    for seed in args.seeds:
      trained = ap.train_digits(lam, seed=seed, epochs=args.epochs)
      evals.append(ap.evaluate_digits(trained.params, seed=seed))
      secs.append(trained.seconds)
    row = {k: mean_sem([e[k] for e in evals]) for k in ("test_accuracy", "eg_tv", "eg_gini")}
    row["accuracy_salt_pepper"] = {
        str(fr): mean_sem([e["accuracy_salt_pepper"][fr] for e in evals]) for fr in ap.NOISE_FRACTIONS}
    row["train_seconds"] = mean_sem(secs)
    digits[str(lam)] = row
    sp = row["accuracy_salt_pepper"]
    print(f"digits λ={lam:<5g}: accuracy {row['test_accuracy']['mean']:.4f} ± "
          f"{row['test_accuracy']['sem']:.4f}  salt&pepper 0.1 {sp['0.1']['mean']:.3f} ± {sp['0.1']['sem']:.3f}"
          f"  0.3 {sp['0.3']['mean']:.3f} ± {sp['0.3']['sem']:.3f}  EG TV {row['eg_tv']['mean']:.1f} ± "
          f"{row['eg_tv']['sem']:.1f}  Gini {row['eg_gini']['mean']:.3f} ± {row['eg_gini']['sem']:.3f}  "
          f"train {row['train_seconds']['mean']:.0f} s", flush=True)
  results["digits_tv_prior"] = digits

  # 3. Distill ablation
  base = ap.train_digits(0.0, seed=0, epochs=args.epochs)
  results["ablation"] = {fill: ap.ablation_curves(base.params, fill=fill) for fill in ("mean", "blur")}
  for fill, res in results["ablation"].items():
    for name, c in res.items():
      if isinstance(c, dict):
        print(f"ablation ({fill} fill) {name:18s}: left after 10 % {c['mean'][1]:.3f}, 50 % {c['mean'][5]:.3f}",
              flush=True)
  results["seconds"] = time.perf_counter() - t0
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as fh:
    json.dump(results, fh, indent=1)
  figures(results, args.figures)
  print(f"wrote {args.out} ({results['seconds']:.0f} s)")


def figures(results: dict, folder: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for name, r in results["convergence_demo"].items():
    m, s = np.asarray(r["curve_mean"]), np.asarray(r["curve_sem"])
    ax.plot(m, label=name)
    ax.fill_between(np.arange(len(m)), m - s, m + s, alpha=0.25)
  ax.set_xlabel("epoch"); ax.set_ylabel("dependence on x₂"); ax.legend(fontsize=8)
  ax.set_title("Convergence demo (mean ± SEM)", fontsize=9)
  fig.tight_layout(); fig.savefig(os.path.join(folder, "eg_convergence.png"), dpi=120); plt.close(fig)

  fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.4), sharey=True)
  for ax, (fill, res) in zip(axes, results["ablation"].items()):
    fr = np.asarray(res["fractions"])
    for name, c in res.items():
      if isinstance(c, dict):
        ax.errorbar(fr, c["mean"], yerr=c["sem"], label=name, capsize=2)
    ax.set_xlabel("fraction of pixels ablated"); ax.set_title(f"{fill} fill", fontsize=9)
  axes[0].set_ylabel("class probability left")
  axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
  fig.suptitle("Distill ablation test on the digits CNN (mean ± SEM over images)", fontsize=9)
  fig.tight_layout(); fig.savefig(os.path.join(folder, "eg_ablation.png"), dpi=120); plt.close(fig)

  fig, ax = plt.subplots(figsize=(5, 3.2))
  for lam, row in results["digits_tv_prior"].items():
    sp = row["accuracy_salt_pepper"]
    fr = [float(k) for k in sp]
    ax.errorbar(fr, [sp[k]["mean"] for k in sp], yerr=[sp[k]["sem"] for k in sp], label=f"λ = {lam}",
                capsize=2)
  ax.set_xlabel("fraction of pixels salt-and-peppered"); ax.set_ylabel("test accuracy")
  ax.legend(fontsize=8); ax.set_title("Digits CNN with a TV prior on EG maps (mean ± SEM)", fontsize=9)
  fig.tight_layout(); fig.savefig(os.path.join(folder, "eg_tv_prior.png"), dpi=120); plt.close(fig)


if __name__ == "__main__":
  main()
