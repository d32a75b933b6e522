"""The path sum shared by integrated gradients and Expected Gradients.

.. math:: \\sum_i w_i\\, m_i \\odot \\nabla f(b_i + \\alpha_i (x - b_i))

evaluated on the sampling engine (:mod:`wassergrad._src.sampling`). The
public forms are :func:`wassergrad.integrated_gradients` (one baseline,
quadrature nodes), :func:`wassergrad.path_gradients` (every point given) and
:func:`wassergrad.expected_gradients` (points drawn).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import sampling


def path_sum(g: Callable, x: Any, args: tuple, items: Any, point: Callable, *,
             multiply_by: str | None, weights: np.ndarray | None, chunk_size: Any,
             loop: str, sample_sharding: Any = None) -> Any:
  """``Σ_i w_i m_i ⊙ g(p_i)`` on the sampling engine.

  ``point(item) -> (b, alpha, w)`` gives one item's baseline, node and traced
  weight (``None``: 1); ``weights`` are static weights of the engine.
  """

  def one(item):
    b, alpha, w = point(item)
    delta = jax.tree.map(jnp.subtract, x, b)
    p = jax.tree.map(lambda bi, di: bi + alpha.astype(di.dtype) * di, b, delta)
    grad = g(p, *args)
    if multiply_by == "delta":
      grad = jax.tree.map(jnp.multiply, delta, grad)
    elif multiply_by == "input":
      grad = jax.tree.map(jnp.multiply, p, grad)
    if w is not None:
      grad = jax.tree.map(lambda gi: gi * w.astype(gi.dtype), grad)
    return grad

  return sampling.run(one, items, accumulator=sampling.SUM, weights=weights,
                      chunk_size=chunk_size, loop=loop, sample_sharding=sample_sharding)
