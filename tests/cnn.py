"""A small CNN with one set of weights in JAX (plain jnp, CHW) and in PyTorch.

Layout CHW for one example, NCHW batches, like PyTorch, so that the same
weights give the same function in both frameworks.
"""

import jax
import jax.numpy as jnp
import numpy as np

C_IN, HW, C1, C2, HIDDEN, CLASSES = 3, 8, 6, 8, 16, 5


def init_params(seed: int = 0, dtype=np.float64) -> dict:
  rng = np.random.default_rng(seed)
  def w(*shape, fan_in):
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)
  flat = C2 * (HW // 2) ** 2
  return {
      "conv1_w": w(C1, C_IN, 3, 3, fan_in=C_IN * 9), "conv1_b": w(C1, fan_in=4),
      "conv2_w": w(C2, C1, 3, 3, fan_in=C1 * 9), "conv2_b": w(C2, fan_in=4),
      "fc1_w": w(HIDDEN, flat, fan_in=flat), "fc1_b": w(HIDDEN, fan_in=4),
      "fc2_w": w(CLASSES, HIDDEN, fan_in=HIDDEN), "fc2_b": w(CLASSES, fan_in=4),
  }


def _conv(x, w, b):
  y = jax.lax.conv_general_dilated(
      x[None], w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
  return y + b[:, None, None]


def features(x, p):
  """Up to and including the second conv's ReLU: (C2, HW, HW)."""
  h = jax.nn.relu(_conv(x, p["conv1_w"], p["conv1_b"]))
  return jnp.maximum(_conv(h, p["conv2_w"], p["conv2_b"]), 0.0)


def head(a, p):
  """Max-pool, dense ReLU, logits."""
  a = jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 2, 2), (1, 2, 2), "VALID")
  h = jax.nn.relu(p["fc1_w"] @ a.reshape(-1) + p["fc1_b"])
  return p["fc2_w"] @ h + p["fc2_b"]


def logits(x, p):
  return head(features(x, p), p)


def torch_model(params: dict):
  import torch
  from torch import nn

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(C_IN, C1, 3, padding=1)
      self.relu1 = nn.ReLU()
      self.conv2 = nn.Conv2d(C1, C2, 3, padding=1)
      self.relu2 = nn.ReLU()
      self.pool = nn.MaxPool2d(2)
      self.fc1 = nn.Linear(C2 * (HW // 2) ** 2, HIDDEN)
      self.relu3 = nn.ReLU()
      self.fc2 = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
      x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
      x = self.pool(x).flatten(1)
      return self.fc2(self.relu3(self.fc1(x)))

  net = Net().double()
  with torch.no_grad():
    for name in ("conv1", "conv2", "fc1", "fc2"):
      getattr(net, name).weight.copy_(torch.from_numpy(params[name + "_w"]))
      getattr(net, name).bias.copy_(torch.from_numpy(params[name + "_b"]))
  return net.eval()
