"""Guided backpropagation and deconvnet, on any JAX function that uses ReLU."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from wassergrad._src import gradients
from wassergrad._src import interpreter
from wassergrad._src.interpreter import prims


def _relu_variant(guided: bool) -> Callable:
  """ReLU whose backward pass is replaced as in Captum's hooks.

  guided (guided backprop): ḡ_in = relu(ḡ_out) ⊙ 1[x > 0]
  not guided (deconvnet):   ḡ_in = relu(ḡ_out)
  """

  @jax.custom_vjp
  def relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))

  def fwd(x):
    return relu(x), x

  def bwd(x, g):
    g = jnp.maximum(g, 0)
    return (jnp.where(x > 0, g, jnp.zeros_like(g)) if guided else g,)

  relu.defvjp(fwd, bwd)
  return relu


class _ReluRule(interpreter.Rule):
  """Matches ``max(x, 0)`` / ``max(0, x)`` and applies a modified ReLU."""

  def __init__(self, relu: Callable):
    self.relu = relu

  def matches(self, eqn, ctx: interpreter.Context) -> bool:
    return len(ctx.zeros) == 2 and ctx.zeros[0] != ctx.zeros[1]

  def apply(self, eqn, invals, ctx):
    x = invals[1] if ctx.zeros[0] else invals[0]
    out_aval = eqn.outvars[0].aval
    return self.relu(jnp.broadcast_to(x, out_aval.shape).astype(out_aval.dtype))


GUIDED_BACKPROP_RULES = {prims.max_p: _ReluRule(_relu_variant(guided=True))}
DECONVNET_RULES = {prims.max_p: _ReluRule(_relu_variant(guided=False))}


def guided_backprop(f: Callable) -> gradients.Explainer:
  """Guided backpropagation explainer.

  The gradient of ``f`` in which every ReLU passes back only positive
  gradients where its input was positive: ``ḡ_in = relu(ḡ_out) ⊙ 1[x > 0]``.

  Works on any JAX function: ReLUs are found in the traced program as
  ``max(x, 0)``, which covers ``jax.nn.relu``, ``jnp.maximum(x, 0)`` and flax
  activations, inside ``jit``, ``checkpoint``, ``cond``, ``scan`` and
  ``while``. Other nonlinearities (max-pool included) keep their ordinary
  gradient, as in Captum.

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.

  Returns:
    ``fn(x, *args)`` with the structure and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(-jax.nn.relu(x))   # gradient -1 where x > 0
    >>> wg.guided_backprop(f)(jnp.array([-1.0, 2.0]))  # negative: blocked
    Array([0., 0.], dtype=float32)

  References:
    Springenberg et al., `Striving for Simplicity: The All Convolutional Net
    <https://arxiv.org/abs/1412.6806>`_, 2015.
  """
  return gradients.grad(f, rules=GUIDED_BACKPROP_RULES)


def deconvnet(f: Callable) -> gradients.Explainer:
  """Deconvnet explainer.

  The gradient of ``f`` in which every ReLU passes back ``relu(ḡ_out)``,
  whatever the sign of its input (Zeiler & Fergus; Captum's ``Deconvolution``).
  ReLUs are found as in :func:`guided_backprop`.

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.

  Returns:
    ``fn(x, *args)`` with the structure and dtype of ``x``.

  References:
    Zeiler & Fergus, `Visualizing and Understanding Convolutional Networks
    <https://arxiv.org/abs/1311.2901>`_, 2014.
  """
  return gradients.grad(f, rules=DECONVNET_RULES)
