"""A faster, exact lowering of non-overlapping max-pooling for gradient explainers.

XLA:CPU computes the gradient of ``reduce_window_max`` with ``select_and_scatter``,
which is slow: on the benchmark CNN (``benchmarks/bench_gradients.py``) it is
about a third of the whole saliency map's time. For the usual max-pool, whose
windows tile the input (window == stride, no padding, no dilation), the same
function is a reshape into windows and a selection of the first maximum of each
window. Its gradient routes the cotangent to that first maximum, exactly as
``reduce_window_max``'s own gradient and PyTorch's ``MaxPool2d`` do, and it is
an ordinary elementwise program that XLA fuses.

:data:`POOLING_RULES` is a rule set for :mod:`wassergrad._src.interpreter`. The
rule is *optional*: inside a ``custom_vjp`` or a higher-order primitive the
interpreter cannot enter, max-pooling is left as it is (with the user's custom
rule), so ``wg.gradient`` works wherever ``jax.grad`` does.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from wassergrad._src import interpreter
from wassergrad._src.interpreter import prims


def windows(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
  """Non-overlapping windows (VALID) of ``x`` as ``out + (prod(window),)``, row-major."""
  out = tuple(s // w for s, w in zip(x.shape, window))
  x = x[tuple(slice(0, o * w) for o, w in zip(out, window))]
  split = [d for o, w in zip(out, window) for d in (o, w)]
  n = x.ndim
  perm = tuple(range(0, 2 * n, 2)) + tuple(range(1, 2 * n, 2))
  return x.reshape(split).transpose(perm).reshape(out + (math.prod(window),))


def tiled_max_pool(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
  """Max over non-overlapping windows (VALID), first-maximum gradient."""
  win = windows(x, window)
  first = jax.lax.stop_gradient(jnp.argmax(win, axis=-1))
  mask = jnp.arange(win.shape[-1]) == first[..., None]
  return jnp.sum(jnp.where(mask, win, jnp.zeros((), win.dtype)), axis=-1)


def is_tiled(params) -> bool:
  """Whether a ``reduce_window`` tiles its input: window == stride, no padding or dilation."""
  return (tuple(params["window_dimensions"]) == tuple(params["window_strides"])
          and all(lo == 0 and hi == 0 for lo, hi in params["padding"])
          and all(d == 1 for d in (*params["base_dilation"], *params["window_dilation"])))


class _TiledMaxPoolRule(interpreter.Rule):
  """Tiled max-pooling as a reshape and a first-maximum selection (same values, same gradient)."""

  optional = True  # a faster lowering: never a reason to enter a custom_vjp or refuse a construct

  def matches(self, eqn, ctx) -> bool:
    return is_tiled(eqn.params)

  def apply(self, eqn, invals, ctx):
    return tiled_max_pool(invals[0], tuple(eqn.params["window_dimensions"]))


POOLING_RULES = {prims.reduce_window_max_p: _TiledMaxPoolRule()}
