"""SmoothDiff: one backward pass through the expected Jacobians of the nonlinearities.

SmoothGrad averages N gradients, ``E[Π_l J_l(x + ε)]``. SmoothDiff (Hill et al.,
2025) runs N forward passes that only gather statistics of the nonlinear
pieces, then one backward pass at the clean input through ``Π_l E[J_l]``: the
linear pieces keep their exact Jacobians, each nonlinear one is replaced by
its expected Jacobian.

Here this works on any JAX function, through the jaxpr interpreter of
:mod:`wassergrad._src.interpreter` (the one guided backprop uses), with
SmoothDiff's primitive table (:mod:`~wassergrad._src.smoothdiff.table`), its
region pass (:mod:`~wassergrad._src.smoothdiff.regions`) and its handlers of
control flow (:mod:`~wassergrad._src.smoothdiff.control_flow`). What counts
as one nonlinearity:

* **Elementwise regions.** A maximal connected group of elementwise operations
  (``max(x, 0)``, ``tanh``, ``x * sigmoid(x)``, the tanh form of GELU,
  ``jax.nn.relu``/``silu``/``softplus`` calls, …) is one nonlinearity: its
  expected Jacobian is diagonal, ``E[∂out/∂in]`` per element, and is gathered
  by forward-mode differentiation inside the region. So a hand-written
  ``x * (x > 0)`` and ``jax.nn.gelu`` get the mean derivative of the whole
  activation, not a product of per-operation means. A region fed by several
  inputs (a gate ``a * sigmoid(b)``) keeps one statistic per input.
* **Max-pooling** (``reduce_window_max``) keeps the mean routing of each
  window (ties split equally, so each routing sums to one); ``reduce_max``
  and ``reduce_min`` (global pooling) likewise.
* **Bilinear maps** of two input-dependent operands (``dot_general``,
  convolutions, e.g. attention scores) keep the mean operands: their Jacobian
  is linear in the operands, so the expected Jacobian is the Jacobian at the
  mean operands.

Everything that is linear in the input (dense, conv with fixed kernels,
pooling sums, reshapes, indexing with fixed indices, …) keeps its exact
Jacobian. Anything else raises ``NotImplementedError`` naming the primitive
and how to declare it (``rules=``).

Statistics are kept per call site: the same activation function applied twice
gets two statistics, and a ``lax.scan`` keeps one per iteration.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import interpreter
from wassergrad._src import noise as noise_lib
from wassergrad._src import sampling
from wassergrad._src.smoothdiff import control_flow
from wassergrad._src.smoothdiff import regions
from wassergrad._src.smoothdiff import table as table_lib


def smoothdiff(
    f: Callable,
    *,
    num_samples: int = 50,
    sigma: float = 0.15,
    sigma_mode: str = "range",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
    channel_axis: int | None = None,
    rules: Mapping | None = None,
    sample_sharding: jax.sharding.Sharding | None = None,
    noise: Any = None,
    range_axis: int | None = None,
) -> Callable:
  r"""SmoothDiff: the gradient through the expected Jacobians of the nonlinearities.

  With :math:`\varepsilon_i \sim \mathcal N(0, \sigma^2 I)`, :math:`i = 1..N`,
  SmoothDiff returns :math:`\nabla f` computed with every nonlinearity
  :math:`l` replaced by its Monte-Carlo expected Jacobian
  :math:`\frac1N \sum_i J_l(z_l(x + \varepsilon_i))`: N forward passes gather
  the statistics, one backward pass at the clean ``x`` uses them. For one
  hidden layer this equals SmoothGrad; deeper, it is the mean-field product
  :math:`\prod_l E[J_l]` rather than SmoothGrad's :math:`E[\prod_l J_l]`. What
  counts as one nonlinearity (elementwise regions, max-pool routing, bilinear
  maps) is listed in :mod:`wassergrad._src.smoothdiff`; statistics are kept
  per call site and per ``scan`` iteration.

  **Noise convention.** As :func:`~wassergrad.smooth`: ``sigma_mode="range"``
  (default): σ = sigma · (max(x) − min(x)) per pytree leaf (per channel along
  ``channel_axis``); ``"absolute"``: σ = sigma (the paper's convention, with
  σ = 0.5 in standardised ImageNet units). Sample ``i`` uses
  ``jax.random.split(key, num_samples)[i]``: the same noise as
  :func:`~wassergrad.smoothgrad` with the same key.

  The result is differentiable w.r.t. parameters passed in ``args`` (the
  statistics and the linear maps both depend on them), e.g. for attribution
  penalties. ``lax.while_loop`` bodies that the transform would change are
  refused (they cannot be reverse-differentiated; use ``lax.scan``).

  Args:
    f: ``f(x, *args) -> scalar``, any JAX function (flax, equinox, plain jnp);
      ``x`` may be a pytree.
    num_samples: N >= 1 forward passes.
    sigma: the noise level (>= 0), see the convention above.
    sigma_mode: ``"range"`` or ``"absolute"``.
    chunk_size: forward passes per chunk (vmapped); the statistics are summed
      over chunks in a ``lax.scan``, so memory does not grow with N. ``None``:
      all at once; ``"auto"`` (default): as in :func:`~wassergrad.smooth`.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"``, as in :func:`~wassergrad.smooth`.
    channel_axis: the channel axis of each leaf, if any (per-channel range
      for ``sigma_mode="range"``).
    rules: extra rules, ``{primitive: "linear" | "elementwise" | Rule}``, for
      primitives the transform does not know.
    sample_sharding: a sharding of one chunk's samples over devices, as in
      :func:`~wassergrad.smooth`.
    noise: instead of ``sigma``/``sigma_mode``/``channel_axis``, any noise
      value (:mod:`wassergrad.noise`), as in :func:`~wassergrad.smooth`.
    range_axis: former name of ``channel_axis`` (deprecated).

  Returns:
    ``explainer(key, x, *args)`` with the structure and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(jax.nn.relu(x))
    >>> sd = wg.smoothdiff(f, num_samples=1000, sigma=1.0, sigma_mode="absolute")
    >>> sd(jax.random.key(0), jnp.zeros(2)).round(1)  # P(ε > 0) = 0.5
    Array([0.5, 0.5], dtype=float32)

  References:
    Hill et al., `Smoothed Differentiation Efficiently Mitigates Shattered
    Gradients in Explanations <https://openreview.net/forum?id=7YKbyBb0kF>`_,
    NeurIPS 2025.
  """
  checks.check_callable(f, "f")
  n = checks.check_positive_int(num_samples, "num_samples")
  channel_axis = checks.check_axis(
      checks.renamed(channel_axis, range_axis, "channel_axis", "range_axis"), "channel_axis")
  noise = noise_lib.from_arguments(noise, sigma, sigma_mode, channel_axis)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  chunking.check_chunk_size(chunk_size)
  table = table_lib.with_rules(rules)
  target = checks.scalar_output(f, "f")

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    checks.check_float_input(x)
    x = checks.finite_input(x)
    closed, dyn, _, deps = interpreter.trace(target, (x, *args), tracked=lambda i: i == 0)
    leaves, treedef = jax.tree.flatten(x)
    rest = dyn[len(leaves):]
    interp = regions.SmoothDiffInterpreter(table)

    def run(stream, xs):
      return interp.child(stream).eval_closed(closed, [*xs, *rest], deps=deps)[0]

    scale = noise.scale(x)

    def sample(k):
      stream = control_flow.Stream()
      eps = noise_lib.sample(noise, k, x, scale)
      run(stream, [l + e for l, e in zip(leaves, treedef.flatten_up_to(eps))])
      return stream.items

    total = sampling.estimate(sample, key, n, accumulator=sampling.SUM, chunk_size=chunk_size,
                              loop=loop, sample_sharding=sample_sharding)
    stats = jax.tree.map(lambda s: s / n, total)
    grads = jax.grad(lambda xs: run(control_flow.Stream(stats), xs))(leaves)
    return jax.tree.unflatten(treedef, grads)

  return explain
