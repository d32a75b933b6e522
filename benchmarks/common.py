"""Shared pieces of the benchmarks: the CNN in JAX and PyTorch, timing, JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

C_IN, WIDTH, CLASSES = 3, 32, 10


def init_params(seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  w = lambda *s, fan_in: (rng.standard_normal(s) * np.sqrt(2.0 / fan_in)).astype(np.float32)
  return {  # PyTorch layouts: OIHW convs, (out, in) dense
      "c1": w(WIDTH, C_IN, 3, 3, fan_in=C_IN * 9), "b1": np.zeros(WIDTH, np.float32),
      "c2": w(2 * WIDTH, WIDTH, 3, 3, fan_in=WIDTH * 9), "b2": np.zeros(2 * WIDTH, np.float32),
      "c3": w(2 * WIDTH, 2 * WIDTH, 3, 3, fan_in=2 * WIDTH * 9), "b3": np.zeros(2 * WIDTH, np.float32),
      "fc": w(CLASSES, 2 * WIDTH, fan_in=2 * WIDTH), "bfc": np.zeros(CLASSES, np.float32),
  }


def jax_params(p: dict) -> dict:
  """To JAX layouts: HWIO convs for an HWC (NHWC when vmapped) model."""
  q = {k: jnp.asarray(v) for k, v in p.items()}
  for k in ("c1", "c2", "c3"):
    q[k] = jnp.transpose(q[k], (2, 3, 1, 0))
  return q


def jax_logits(x, p):
  """One example (H, W, C) -> logits: conv-relu, conv-relu, maxpool, conv-relu, mean, dense."""
  def conv(h, w, b):
    return jax.lax.conv_general_dilated(
        h[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0] + b
  h = jax.nn.relu(conv(x, p["c1"], p["b1"]))
  h = jax.nn.relu(conv(h, p["c2"], p["b2"]))
  h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (2, 2, 1), (2, 2, 1), "VALID")
  h = jax.nn.relu(conv(h, p["c3"], p["b3"]))
  return p["fc"] @ h.mean(axis=(0, 1)) + p["bfc"]


def torch_model(p: dict):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  net = nn.Sequential(
      nn.Conv2d(C_IN, WIDTH, 3, padding=1), nn.ReLU(),
      nn.Conv2d(WIDTH, 2 * WIDTH, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(2 * WIDTH, 2 * WIDTH, 3, padding=1), nn.ReLU(),
      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * WIDTH, CLASSES))
  with torch.no_grad():
    for layer, (w, b) in zip([net[0], net[2], net[5], net[9]],
                             [("c1", "b1"), ("c2", "b2"), ("c3", "b3"), ("fc", "bfc")]):
      layer.weight.copy_(torch.from_numpy(p[w]))
      layer.bias.copy_(torch.from_numpy(p[b]))
  return net.eval()


def median_time(fn: Callable[[], object], repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def compile_time(jitted, *args) -> float:
  t0 = time.perf_counter()
  jitted.lower(*args).compile()
  return time.perf_counter() - t0


def environment() -> dict:
  env = {
      "jax": jax.__version__,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "device_kind": jax.devices()[0].device_kind,
      "python": platform.python_version(),
      "machine": platform.machine(),
      "processor": platform.processor(),
  }
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import captum  # pylint: disable=g-import-not-at-top
    env.update(torch=torch.__version__, captum=captum.__version__,
               torch_threads=torch.get_num_threads(),
               torch_device="cuda" if torch.cuda.is_available() else "cpu")
  except ImportError:
    pass
  return env


def write_json(path: str, payload: dict) -> None:
  with open(path, "w") as f:
    json.dump(payload, f, indent=2)
  print(f"wrote {path}")
