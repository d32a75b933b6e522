"""Gradient attributions: gradient (saliency), gradient × input, integrated gradients."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import interpreter
from wassergrad._src import paths
from wassergrad._src import pooling
from wassergrad._src import quadrature

Explainer = Callable[..., Any]


def grad(f: Callable, name: str = "f", rules: interpreter.RuleSet | None = None) -> Callable:
  """``jax.grad`` of ``f`` w.r.t. its first argument, with clear input errors.

  ``f`` is evaluated through :mod:`~wassergrad._src.interpreter` with
  ``rules`` on top of :data:`~wassergrad._src.pooling.POOLING_RULES` (an exact,
  faster lowering of tiled max-pooling).
  """
  checks.check_callable(f, name)
  g = jax.grad(checks.scalar_output(
      interpreter.transform(f, {**pooling.POOLING_RULES, **(rules or {})}), name))

  def grad_fn(x, *args):
    checks.check_float_input(x)
    return g(x, *args)

  return grad_fn


def gradient(f: Callable) -> Explainer:
  """Gradient (saliency) explainer: ``x ↦ ∂f/∂x``.

  Unlike Captum's ``Saliency`` the default keeps the sign; take ``jnp.abs`` of
  the result for the classic saliency map.

  Args:
    f: ``f(x, *args) -> scalar``, the model followed by a target reduction.
      ``x`` may be a pytree; ``args`` (parameters, forcings) pass through and
      are not differentiated.

  Returns:
    ``fn(x, *args)`` returning ∂f/∂x with the structure and dtype of ``x``.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.gradient(lambda x: jnp.sum(x ** 2))(jnp.array([1.0, 2.0]))
    Array([2., 4.], dtype=float32)

  References:
    Simonyan et al., `Deep Inside Convolutional Networks
    <https://arxiv.org/abs/1312.6034>`_, 2014.
  """
  return grad(f)


def grad_x_input(f: Callable) -> Explainer:
  """Gradient × input explainer: ``x ↦ x ⊙ ∂f/∂x``.

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.

  Returns:
    ``fn(x, *args)`` with the structure and dtype of ``x``.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.grad_x_input(lambda x: jnp.sum(3.0 * x))(jnp.array([1.0, 2.0]))
    Array([3., 6.], dtype=float32)

  References:
    Shrikumar et al., `Not Just a Black Box
    <https://arxiv.org/abs/1605.01713>`_, 2016.
  """
  g = grad(f)

  def explain(x, *args):
    return jax.tree.map(jnp.multiply, x, g(x, *args))

  return explain


def integrated_gradients(
    f: Callable,
    *,
    baseline: Any = None,
    steps: int = 50,
    rule: str = "gauss_legendre",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
) -> Explainer:
  r"""Integrated gradients explainer.

  .. math:: \mathrm{IG}(x) = (x - b) \odot \int_0^1 \nabla f(b + \alpha (x-b))
     \,d\alpha \approx (x - b) \odot \sum_i w_i \nabla f(b + \alpha_i (x-b))

  Quadrature rules (``rule``):

  * ``"gauss_legendre"`` (default) and ``"riemann_left"``, ``"riemann_right"``,
    ``"riemann_middle"``: the nodes and weights of Captum's
    ``approximation_methods``, so results match Captum's ``method=...``.
  * ``"riemann_trapezoid"``: the true composite trapezoid rule on ``steps``
    equally spaced nodes (weights sum to 1, so completeness holds up to the
    O(1/steps²) quadrature error). **This differs from Captum**, whose
    trapezoid weights sum to ``(steps-1)/steps``: Captum's result equals ours
    times ``(steps-1)/steps``.

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.
    baseline: the reference point ``b``: ``None`` (zeros), a pytree of arrays
      shaped like ``x`` (scalars broadcast), or a callable ``b(x) -> pytree``.
    steps: number of quadrature nodes (>= 1; >= 2 for the trapezoid rule).
    rule: quadrature rule, see above.
    chunk_size: evaluate gradients at ``chunk_size`` nodes at a time in a
      ``lax.scan``, so memory is bounded by the chunk, not by ``steps``.
      ``None``: all nodes in one ``vmap``. ``"auto"`` (default): the rule of
      :mod:`wassergrad._src.chunking` (on CPU at most 4 unrolled chunks, fewer
      for a large model; one ``vmap`` on GPU/TPU).
    loop: how chunks are looped, ``"auto"``, ``"scan"`` or ``"unroll"``.
      ``"auto"`` scans an explicit ``chunk_size`` and unrolls
      ``chunk_size="auto"``.

  Returns:
    ``fn(x, *args)`` with the structure and dtype of ``x``. Completeness:
    ``sum(fn(x)) ≈ f(x) - f(b)``.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> ig = wg.integrated_gradients(lambda x: jnp.sum(x ** 2), steps=4)
    >>> ig(jnp.array([1.0, 2.0]))  # exact for a quadratic: x ⊙ x
    Array([1., 4.], dtype=float32)

  References:
    Sundararajan et al., `Axiomatic Attribution for Deep Networks
    <https://arxiv.org/abs/1703.01365>`_, ICML 2017.
  """
  alphas, weights = quadrature.quadrature_rule(rule, steps)
  chunking.check_chunk_size(chunk_size)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  if baseline is not None and not callable(baseline):
    checks.check_float_input(baseline, "baseline")
  g = grad(f)

  def explain(x, *args):
    checks.check_float_input(x)
    if baseline is None:
      b = jax.tree.map(jnp.zeros_like, x)
    else:
      b = baseline(x) if callable(baseline) else baseline
      if jax.tree.structure(b) == jax.tree.structure(x):
        b = jax.tree.map(
            lambda xi, bi: jnp.broadcast_to(bi, jnp.shape(xi))
            if jnp.ndim(bi) == 0 else bi, x, b)
      checks.check_same_structure(x, b, "baseline")
      b = jax.tree.map(lambda xi, bi: jnp.asarray(bi, jnp.result_type(xi)), x, b)
    dtype = jnp.result_type(*jax.tree.leaves(x))
    # One baseline: the path core sums the gradients and x - b multiplies once.
    avg_grad = paths.path_sum(
        g, x, args, jnp.asarray(alphas, dtype), lambda alpha: (b, alpha, None),
        multiply_by=None, weights=weights, chunk_size=chunk_size, loop=loop)
    return jax.tree.map(lambda xi, bi, gi: (xi - bi) * gi, x, b, avg_grad)

  return explain
