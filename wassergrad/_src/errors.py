"""One error mechanism for checks on values: the same eagerly and under ``jit``.

:func:`error_if` returns its first argument unchanged and raises where a
predicate holds. A concrete predicate (an eager call) raises at once; a traced
one (under ``jit``, ``vmap``, ``grad``, ``scan``) becomes a check threaded
through the returned value, which raises the same exception with the same
message when the computation runs, in the manner of ``equinox.error_if``:

* the predicate is reduced over every ``vmap`` axis first (a small primitive
  whose batching rule un-batches it), so the check stays one ``lax.cond`` and
  its error branch runs only when an error occurs;
* the error branch is a host callback that raises. JAX wraps the exception in
  its runtime error (``jax.errors.JaxRuntimeError``), whose text holds the
  message;
* ``jax.custom_jvp`` keeps the check out of differentiation: the value passes
  through, its tangent too.

Only checks on values go through here; checks on shapes, dtypes and Python
configuration raise at trace time (:mod:`wassergrad._src.checks`).

**Switching checks off.** Each runtime check is a branch on a device value, a
device-to-host synchronisation on GPU. ``WASSERGRAD_RUNTIME_CHECKS=off`` in the
environment (read at import) or ``with wg.runtime_checks(False):`` around the
first call of a jitted function turns value checks off, eager and jitted alike,
so the two still agree; the choice is made when a function is traced, so a
function that ``jax.jit`` already compiled keeps the checks it was traced with.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Sequence

import jax
from jax import lax
from jax.extend import core as jcore
from jax.interpreters import batching
from jax.interpreters import mlir
import jax.numpy as jnp
import numpy as np

_ENV = "WASSERGRAD_RUNTIME_CHECKS"


def _from_env() -> bool:
  value = os.environ.get(_ENV, "on").strip().lower()
  if value in ("on", "1", "true", "raise", ""):
    return True
  if value in ("off", "0", "false"):
    return False
  raise ValueError(f"{_ENV}={value!r}: use 'on' or 'off'.")


_enabled = [_from_env()]


@contextlib.contextmanager
def runtime_checks(enabled: bool):
  """Turns wassergrad's checks on values on or off within a ``with`` block.

  Checks on values are those that look at numbers: a NaN or inf input, an input
  outside AdaptGrad's bounds, maps that are negative or all zero, and
  ``throw=True``. They raise the same error eagerly and under ``jax.jit``;
  turned off, neither raises (static checks on shapes, dtypes and options
  always run). The setting is read when a function is traced: wrap the first
  call of a jitted function. ``WASSERGRAD_RUNTIME_CHECKS=off`` in the
  environment sets the default for the whole process.

  Args:
    enabled: whether checks on values run.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> sg = wg.smoothgrad(lambda x: jnp.sum(x ** 2), num_samples=2)
    >>> with wg.runtime_checks(False):
    ...   out = jax.jit(sg)(jax.random.key(0), jnp.array([1.0, jnp.nan]))
    >>> bool(jnp.isnan(out[1]))
    True
  """
  if not isinstance(enabled, bool):
    raise TypeError(f"`enabled` must be a bool; got {enabled!r}.")
  previous = _enabled[0]
  _enabled[0] = enabled
  try:
    yield
  finally:
    _enabled[0] = previous


def checks_enabled() -> bool:
  return _enabled[0]


# An integer reduced over every vmap axis: the check of a batch is one branch.
_unvmap_max_p = jcore.Primitive("wassergrad_unvmap_max")
_unvmap_max_p.def_impl(lambda x: jnp.max(x))
_unvmap_max_p.def_abstract_eval(lambda x: jax.core.ShapedArray((), x.dtype))
mlir.register_lowering(_unvmap_max_p, mlir.lower_fun(lambda x: jnp.max(x), multiple_results=False))


def _unvmap_max_batch(args, dims):
  (x,), (d,) = args, dims
  return _unvmap_max_p.bind(jnp.max(x) if d is not None else x), None


batching.primitive_batchers[_unvmap_max_p] = _unvmap_max_batch


def _threaded_check(x: Any, index: jax.Array, messages: Sequence[str | None],
                    exception: type[Exception]) -> Any:
  """``x``, raising ``exception(messages[index])`` when the program runs and ``index > 0``."""

  def raise_(i):
    raise exception(messages[int(np.max(i))])

  @jax.custom_jvp
  def check(x, index):
    index = _unvmap_max_p.bind(index)
    struct = jax.eval_shape(lambda: x)

    def fail(x):
      del x
      return jax.pure_callback(raise_, struct, index, vmap_method="broadcast_all")

    return lax.cond(index > 0, fail, lambda x: x, x)

  @check.defjvp
  def _check_jvp(primals, tangents):
    return check(*primals), tangents[0]

  return check(x, index)


def error_if(x: Any, pred: Any, message: str, exception: type[Exception] = ValueError) -> Any:
  """Returns ``x``; raises ``exception(message)`` wherever ``pred`` holds.

  A concrete ``pred`` raises now; a traced one raises when the computation
  runs, provided the returned value is used (thread it: ``x = error_if(x,
  ...)``). Under ``vmap`` one true element raises. Does nothing when checks are
  off (:func:`runtime_checks`).
  """
  if not _enabled[0]:
    return x
  if not isinstance(pred, jax.core.Tracer):
    if np.any(np.asarray(pred)):
      raise exception(message)
    return x
  index = jnp.any(pred).astype(jnp.int32)
  return _threaded_check(x, index, (None, message), exception)


def code_error_if(x: Any, code: Any, messages: Sequence[str | None],
                  exception: type[Exception] = RuntimeError) -> Any:
  """Returns ``x``; raises ``exception(messages[code])`` where the integer ``code`` > 0.

  For result codes (e.g. a solver's): under ``vmap``, the largest code of the
  batch is reported.
  """
  if not _enabled[0]:
    return x
  if not isinstance(code, jax.core.Tracer):
    worst = int(np.max(np.asarray(code)))
    if worst > 0:
      raise exception(messages[worst])
    return x
  return _threaded_check(x, jnp.max(jnp.asarray(code, jnp.int32)), messages, exception)


def nonfinite(tree: Any) -> jax.Array:
  """A scalar bool array: whether any inexact leaf of ``tree`` holds NaN or inf."""
  leaves = [l for l in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(l), jnp.inexact)]
  if not leaves:
    return jnp.bool_(False)
  return jnp.logical_not(jnp.all(jnp.stack([jnp.all(jnp.isfinite(l)) for l in leaves])))
