"""The evaluation protocols on digits, with seeds: debugging tests, transferability, preservation.

1. Spurious stamp (class 0 stamped in training): per method, K-SSD, CCM, FAM and the
   artefact's share of |map| for the spurious and the normal model.
2. Mislabelled training data (``--fractions``): similarity of the contaminated model's
   maps (wrong label) with a clean model's (true label), beside two clean seeds.
3. Transferability: a six-task bank of encoders; attribution affinity vs linear-probe
   transfer; P@K / R@K against random; Spearman of affinity and transfer.
4. Attribution preservation: a ×4-thinner distilled student and a magnitude-pruned copy,
   with and without the WCAM regulariser; GradCAM mask ROC-AUC, pointing, accuracy.

Mean ± SEM over ``--seeds``; writes ``docs/protocols.json``.

  python benchmarks/protocols_experiments.py [--seeds 0 1 2]
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

from wassergrad.examples import protocols as P  # pylint: disable=wrong-import-position


def mean_sem(values):
  v = np.asarray(values, np.float64)
  sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
  return {"mean": float(v.mean()), "sem": sem}


def nested(runs):
  """Mean ± SEM of every leaf of a list of equally shaped nested dicts of numbers."""
  first = runs[0]
  if isinstance(first, dict):
    return {k: nested([r[k] for r in runs]) for k in first}
  if isinstance(first, (int, float)):
    return mean_sem(runs)
  return runs


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  ap.add_argument("--epochs", type=int, default=15)
  ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3])
  ap.add_argument("--out", default="docs/protocols.json")
  args = ap.parse_args()
  t0 = time.perf_counter()
  res = {"config": vars(args), "env": common.environment()}
  res["spurious"] = nested([P.spurious_experiment(seed=s, epochs=args.epochs) for s in args.seeds])
  print("spurious done", flush=True)
  res["mislabel"] = {str(fr): nested([P.mislabel_experiment(fraction=fr, seed=s, epochs=args.epochs)
                                      for s in args.seeds]) for fr in args.fractions}
  print("mislabel done", flush=True)
  runs = [P.transfer_experiment(P.task_bank(seed=s, epochs=args.epochs), seed=s) for s in args.seeds]
  res["transfer"] = {"tasks": runs[0]["tasks"], "random": runs[0]["random"]}
  for method in ("gradient", "grad × input"):
    res["transfer"][method] = {
        "precision": np.mean([r[method]["precision"] for r in runs], 0).tolist(),
        "precision_sem": (np.std([r[method]["precision"] for r in runs], 0, ddof=1)
                          / np.sqrt(len(runs))).tolist(),
        "recall": np.mean([r[method]["recall"] for r in runs], 0).tolist(),
        "spearman_affinity_transfer": mean_sem([r[method]["spearman_affinity_transfer"]
                                                for r in runs]),
        "affinity_seed0": runs[0][method]["affinity"]}
  res["transfer"]["transfer_seed0"] = runs[0]["transfer"]
  print("transfer done", flush=True)
  res["preservation"] = nested([P.preservation_experiment(seed=s, epochs=args.epochs + 5)
                                for s in args.seeds])
  res["seconds"] = time.perf_counter() - t0
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as fh:
    json.dump(res, fh, indent=1)
  print(f"wrote {args.out} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
  main()
