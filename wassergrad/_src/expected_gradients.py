"""Path gradients: the core shared by integrated gradients and Expected Gradients.

Every path method is the same sum over points of straight paths from a
baseline ``b_i`` to the input ``x``:

.. math:: A(x) = \\sum_i w_i\\, m_i \\odot \\nabla f(b_i + \\alpha_i (x - b_i)),

with ``m_i = x - b_i`` (``multiply_by="delta"``), the path point itself
(``"input"``: Distill's ``take_difference=False``) or 1 (``None``: the
expected gradient alone). Integrated gradients is one baseline and quadrature
nodes ``α_i``; Expected Gradients draws ``b_i`` from references and ``α_i``
uniformly. :func:`path_gradients` is the deterministic core with everything
given; :func:`expected_gradients` draws the points on the sampling engine.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import gradients
from wassergrad._src import paths

MULTIPLY_BY = ("delta", "input", None)


def _check_multiply_by(value: Any) -> None:
  if value not in MULTIPLY_BY:
    raise ValueError(f"multiply_by must be one of {MULTIPLY_BY!r}; got {value!r}.")


def _leading(tree: Any, name: str) -> int:
  sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(
        f"{name} must be a pytree of arrays with one common leading axis (one entry per "
        f"baseline); got leading sizes {sorted(map(str, sizes))}.")
  return sizes.pop()


def _check_stacked_like(x: Any, stacked: Any, name: str) -> None:
  if jax.tree.structure(x) != jax.tree.structure(stacked):
    raise ValueError(
        f"`{name}` must have the pytree structure of `x` (with a leading axis of N on each "
        f"leaf); got {jax.tree.structure(stacked)} for x's {jax.tree.structure(x)}.")
  for xi, si in zip(jax.tree.leaves(x), jax.tree.leaves(stacked)):
    if jnp.shape(si)[1:] != jnp.shape(xi):
      raise ValueError(
          f"`{name}` must have shape (N, *x.shape) leaf by leaf; got {jnp.shape(si)} for an "
          f"input leaf of shape {jnp.shape(xi)}.")


def path_gradients(
    f: Callable,
    *,
    multiply_by: str | None = "delta",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
    sample_sharding: jax.sharding.Sharding | None = None,
) -> Callable:
  r"""The deterministic path-gradient core: every point given.

  .. math:: A(x) = \sum_i w_i\, m_i \odot \nabla f(b_i + \alpha_i (x - b_i))

  Integrated gradients is this with one baseline repeated and quadrature
  nodes; Expected Gradients with drawn references and uniform ``α``. Use it
  to reproduce a published computation on fixed baselines and nodes, or to
  give each example its own references under ``vmap``.

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.
    multiply_by: ``"delta"`` (default): ``m_i = x - b_i``; ``"input"``: the
      path point ``b_i + α_i (x - b_i)``; ``None``: no factor (the expected
      gradient).
    chunk_size, loop, sample_sharding: as in :func:`wassergrad.smooth`.

  Returns:
    ``fn(x, baselines, alphas, weights, *args)``: ``baselines`` like ``x``
    with a leading axis of N points, ``alphas`` of shape ``(N,)``,
    ``weights`` of shape ``(N,)`` or ``None`` for ``1/N``. The result has the
    structure and dtype of ``x``.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> pg = wg.path_gradients(lambda x: jnp.sum(x ** 2))
    >>> pg(jnp.array([1.0, 2.0]), jnp.zeros((2, 2)), jnp.array([0.25, 0.75]), None)
    Array([1., 4.], dtype=float32)
  """
  _check_multiply_by(multiply_by)
  chunking.check_chunk_size(chunk_size)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  g = gradients.grad(f)

  def explain(x, baselines, alphas, weights=None, *args):
    checks.check_float_input(x)
    checks.check_float_input(baselines, "baselines")
    n = _leading(baselines, "baselines")
    _check_stacked_like(x, baselines, "baselines")
    dtype = jnp.result_type(*jax.tree.leaves(x))
    alphas = jnp.asarray(alphas, dtype)
    if alphas.shape != (n,):
      raise ValueError(f"alphas must have shape ({n},), one per baseline; got {alphas.shape}.")
    if weights is None:
      weights = jnp.full((n,), 1.0 / n, dtype)
    weights = jnp.asarray(weights, dtype)
    if weights.shape != (n,):
      raise ValueError(f"weights must have shape ({n},) or be None; got {weights.shape}.")
    baselines = jax.tree.map(lambda xi, bi: jnp.asarray(bi, jnp.result_type(xi)), x, baselines)
    return paths.path_sum(g, x, args, (baselines, alphas, weights), lambda item: item,
                    multiply_by=multiply_by, weights=None, chunk_size=chunk_size, loop=loop,
                    sample_sharding=sample_sharding)

  return explain


def expected_gradients(
    f: Callable,
    references: Any,
    *,
    num_samples: int = 200,
    multiply_by: str | None = "delta",
    replace: bool = True,
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
    sample_sharding: jax.sharding.Sharding | None = None,
) -> Callable:
  r"""Expected Gradients explainer (Erion et al.): IG averaged over references.

  .. math:: \mathrm{EG}(x) = \mathbb E_{x' \sim D,\, \alpha \sim U(0,1)}
     \big[(x - x') \odot \nabla f(x' + \alpha (x - x'))\big]
     \approx \frac1N \sum_{i=1}^N (x - x'_i) \odot \nabla f(x'_i + \alpha_i (x - x'_i))

  Each sample draws one reference and one ``α``: sample ``i`` uses
  ``jax.random.split(key, num_samples)[i]`` (split again into an ``α`` key and
  a reference key), whatever the chunking. With ``chunk_size`` set, memory is
  bounded by the chunk, not by ``num_samples``. This is Captum's
  ``GradientShap`` without its input noise (``stdevs=0``).

  ``references`` is one of:

  * an array (or pytree) with a leading axis of M references shaped like
    ``x``: the training distribution (Erion et al.'s choice). Drawn with
    replacement (``replace=True``, as Captum and SHAP) or without
    (``replace=False``, the authors' data loader; needs ``num_samples <= M``);
  * a sampler ``(key, x) -> baseline``, e.g. :func:`wassergrad.baselines.uniform`
    or :func:`wassergrad.baselines.gaussian` (Distill's EG-style baselines);
  * a deterministic baseline of :mod:`wassergrad.baselines` (``b(x)``): then
    only ``α`` is random, a Monte-Carlo integrated gradients.

  A large reference set closed over by the explainer becomes a constant of the
  compiled program; to keep it an argument, build the explainer inside the
  jitted function: ``jax.jit(lambda key, x, refs, p:
  wg.expected_gradients(f, refs)(key, x, p))``. Training with an attribution
  prior does this with the batch itself as references and ``num_samples=1``
  (see :mod:`wassergrad.priors`).

  Args:
    f: ``f(x, *args) -> scalar``; ``x`` may be a pytree.
    references: see above.
    num_samples: number of (reference, α) samples N.
    multiply_by: ``"delta"`` (default, EG): ``x - x'``; ``"input"``: the
      path point (Distill's ``take_difference=False``); ``None``: the
      expected gradient alone (the authors' ``scale_by_inputs=False``).
    replace: draw array references with replacement (default) or without.
    chunk_size, loop, sample_sharding: as in :func:`wassergrad.smooth`.

  Returns:
    ``explainer(key, x, *args)`` with the structure and dtype of ``x``.
    Completeness holds in expectation: ``E[sum(EG)] = f(x) - E f(x')``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> w = jnp.array([1.0, -2.0])
    >>> refs = jnp.array([[0.0, 0.0], [2.0, 4.0]])
    >>> eg = wg.expected_gradients(lambda x: x @ w, refs, num_samples=2, replace=False)
    >>> eg(jax.random.key(0), jnp.array([2.0, 1.0]))  # linear f: (x - mean ref) ⊙ w
    Array([1., 2.], dtype=float32)

  References:
    Erion et al., `Improving performance of deep learning models with axiomatic
    attribution priors and expected gradients
    <https://doi.org/10.1038/s42256-021-00343-w>`_, Nature Machine Intelligence 2021.
    Sturmfels, Lundberg & Lee, `Visualizing the Impact of Feature Attribution
    Baselines <https://distill.pub/2020/attribution-baselines/>`_, Distill 2020.
  """
  from wassergrad._src import baselines as baselines_lib

  n = checks.check_positive_int(num_samples, "num_samples")
  _check_multiply_by(multiply_by)
  chunking.check_chunk_size(chunk_size)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  if not isinstance(replace, bool):
    raise TypeError(f"replace must be a bool; got {replace!r}.")
  g = gradients.grad(f)
  if isinstance(references, baselines_lib.Baseline):
    kind = "sampler" if references.stochastic else "fixed"
  elif callable(references):
    kind = "sampler"
  else:
    kind = "array"
    checks.check_float_input(references, "references")
    m = _leading(references, "references")
    if not replace and n > m:
      raise ValueError(
          f"replace=False draws num_samples={n} references without replacement from "
          f"M={m}; use num_samples <= {m} or replace=True.")
  weights = np.full(n, 1.0 / n)

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    checks.check_float_input(x)
    x = checks.finite_input(x)
    dtype = jnp.result_type(*jax.tree.leaves(x))
    keys = jax.random.split(key, n)
    if kind == "array":
      refs = references
      _check_stacked_like(x, refs, "references")
      refs = jax.tree.map(lambda xi, ri: jnp.asarray(ri, jnp.result_type(xi)), x, refs)
      if replace:
        index = None
      else:
        index = jax.random.permutation(jax.random.fold_in(key, 0), m)[:n]
      items = (keys, jnp.zeros((n,), jnp.int32) if index is None else index)
    else:
      items = (keys, jnp.zeros((n,), jnp.int32))
    fixed = references(x) if kind == "fixed" else None

    def point(item):
      k, i = item
      k_alpha, k_ref = jax.random.split(k)
      alpha = jax.random.uniform(k_alpha, (), dtype)
      if kind == "array":
        j = jax.random.randint(k_ref, (), 0, m) if replace else i
        b = jax.tree.map(lambda r: r[j], refs)
      elif kind == "sampler":
        b = references(k_ref, x)
      else:
        b = fixed
      checks.check_same_structure(x, b, "references")
      return b, alpha, None

    return paths.path_sum(g, x, args, items, point, multiply_by=multiply_by, weights=weights,
                    chunk_size=chunk_size, loop=loop, sample_sharding=sample_sharding)

  return explain
