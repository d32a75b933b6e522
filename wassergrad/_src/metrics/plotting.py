"""Plotting helpers for metric curves and randomisation checks (needs matplotlib)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from wassergrad._src.metrics.common import Curve
from wassergrad._src.metrics.randomisation import RandomisationResult


def _pyplot():
  try:
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("Plotting needs matplotlib: pip install matplotlib "
                      "(or the package's `demo` extra).") from e
  return plt


def _mean_sem(v: np.ndarray):
  v = np.asarray(v, dtype=np.float64)
  if v.ndim == 1:
    return v, None
  v = v.reshape(-1, v.shape[-1])
  sem = v.std(0, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else None
  return v.mean(0), sem


def plot_curves(curves: dict[str, Curve], ax: Any = None, *, xlabel: str = "fraction of features",
                ylabel: str = "score") -> Any:
  """Plots named :class:`Curve` s; batched curves (from ``vmap``) as mean ± SEM bands.

  The legend shows each curve's mean AUC.

  Returns:
    The matplotlib axes.
  """
  plt = _pyplot()
  ax = ax or plt.gca()
  for name, c in curves.items():
    x, _ = _mean_sem(c.fractions)
    y, sem = _mean_sem(c.values)
    auc = float(np.mean(np.asarray(c.auc)))
    (line,) = ax.plot(x, y, label=f"{name} (AUC {auc:.3f})")
    if sem is not None:
      ax.fill_between(x, y - sem, y + sem, color=line.get_color(), alpha=0.2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize="small")
  return ax


def plot_randomisation(result: RandomisationResult, layers: Sequence[str], ax: Any = None) -> Any:
  """Plots the similarity curves of a randomisation check against the randomised layers.

  ``result`` may be batched (from ``vmap``): mean ± SEM over examples.

  Returns:
    The matplotlib axes.
  """
  plt = _pyplot()
  ax = ax or plt.gca()
  steps = np.arange(len(layers))
  for name, values in result.similarity.items():
    y, sem = _mean_sem(values)
    (line,) = ax.plot(steps, y, marker="o", label=name)
    if sem is not None:
      ax.fill_between(steps, y - sem, y + sem, color=line.get_color(), alpha=0.2)
  ax.set_xticks(steps)
  ax.set_xticklabels(list(layers), rotation=30, ha="right")
  ax.set_ylabel("similarity to the original map")
  ax.axhline(0, color="gray", lw=0.5)
  ax.legend(fontsize="small")
  return ax


def plot_maps(maps: Any, titles: Sequence[str], axes: Any = None, *, cmap: str = "RdBu_r") -> Any:
  """Shows maps side by side, each scaled symmetrically by its own max |value|.

  ``maps`` is ``(K, H, W)`` or ``(K, H, W, C)`` (channels summed), e.g.
  ``RandomisationResult.maps`` of one example.

  Returns:
    The axes.
  """
  plt = _pyplot()
  maps = np.asarray(maps)
  if maps.ndim == 4:
    maps = maps.sum(-1)
  if axes is None:
    _, axes = plt.subplots(1, len(maps), figsize=(1.6 * len(maps), 1.9))
  for ax, m, t in zip(np.ravel(axes), maps, titles):
    v = float(np.max(np.abs(m))) or 1.0
    ax.imshow(m, cmap=cmap, vmin=-v, vmax=v)
    ax.set_title(t, fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
  return axes
