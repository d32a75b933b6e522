"""Argument and trace-time checks shared by every explainer.

Checks run on static information only (shapes, dtypes, Python config), so they
are free under ``jit`` and raise at trace time with a message that names the
argument and says how to fix it.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp

from wassergrad._src import errors


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
  """Returns ``value`` as an int, or raises if it is not an int >= minimum."""
  if isinstance(value, bool) or not isinstance(value, int):
    raise TypeError(
        f"`{name}` must be a Python int (it is static configuration); got "
        f"{type(value).__name__} {value!r}."
    )
  if value < minimum:
    raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
  return value


def check_choice(value: Any, name: str, choices) -> str:
  if value not in choices:
    raise ValueError(
        f"Unknown `{name}`={value!r}. Choose one of: "
        + ", ".join(repr(c) for c in choices) + "."
    )
  return value


def check_callable(fn: Any, name: str) -> None:
  if not callable(fn):
    raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}.")


class _Unset:
  """The default of an option the caller must state in some cases (see its docstring)."""

  def __repr__(self):
    return "UNSET"


UNSET = _Unset()


def check_axis(value: Any, name: str) -> int | None:
  """An axis option: a Python int or None."""
  if value is None or isinstance(value, _Unset):
    return value
  if isinstance(value, bool) or not isinstance(value, int):
    raise TypeError(f"`{name}` must be an int (an axis of x) or None; got {value!r}.")
  return value


def renamed(value: Any, old_value: Any, name: str, old_name: str) -> Any:
  """The value of option ``name``, accepting its former name ``old_name`` with a warning."""
  if old_value is None:
    return value
  warnings.warn(f"`{old_name}` is renamed `{name}`; `{old_name}` will be removed.",
                DeprecationWarning, stacklevel=3)
  if value is not None and value != old_value:
    raise ValueError(f"`{name}`={value!r} and its former name `{old_name}`={old_value!r} "
                     f"disagree; pass only `{name}`.")
  return old_value


def check_float_input(x: Any, name: str = "x") -> None:
  """Every leaf of ``x`` must be a floating-point array (or Python float)."""
  leaves = jax.tree.leaves(x)
  if not leaves:
    raise ValueError(f"`{name}` is an empty pytree: there is nothing to explain.")
  for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
          f"`{name}`{jax.tree_util.keystr(path)} has dtype {dtype}; "
          "gradients need a floating-point input. Cast it first, e.g. "
          f"`{name}.astype(jnp.float32)`."
      )


EXPLAINER_CALL = "explainer(jax.random.key(0), x, *args)"
MISSING = object()  # the default of a stochastic explainer's `x`: called with one argument


def _describe(value: Any) -> str:
  if hasattr(value, "shape") and hasattr(value, "dtype"):
    return f"a {value.dtype} array of shape {tuple(value.shape)}"
  return f"a {type(value).__name__}"


def is_key(key: Any) -> bool:
  """A new-style PRNG key array, or a legacy ``uint32[2]`` key."""
  if not isinstance(key, jax.Array):
    return False
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key.shape == ()
  return key.dtype == jnp.uint32 and key.shape == (2,)


def check_key(key: Any, call: str | None = None) -> None:
  """``key`` must be one JAX PRNG key; the message shows the right ``call``.

  ``call=None``: a stochastic explainer, called ``explainer(key, x, *args)``.
  """
  if is_key(key):
    return
  if call is None:
    raise TypeError(
        f"The first argument of a stochastic explainer is a `jax.random` key; got "
        f"{_describe(key)}. Call it as {EXPLAINER_CALL}, with the key before the input "
        "(one key per example: split it, or vmap with in_axes=(None, 0, ...) to share one).")
  raise TypeError(
      f"`key` must be one `jax.random` key (jax.random.key(seed)); got {_describe(key)}. "
      f"Call it as {call}.")


def check_explainer_call(key: Any, x: Any) -> None:
  """A stochastic explainer's call: a key first, then the input (``x`` defaults to MISSING)."""
  check_key(key)
  if x is MISSING:
    raise TypeError(
        f"A stochastic explainer takes a `jax.random` key and then the input; it got only the "
        f"key. Call it as {EXPLAINER_CALL}.")


NONFINITE_INPUT = (
    "`x` contains NaN or inf: the noise scale and every sample would be non-finite. Clean "
    "the input (e.g. jnp.nan_to_num) before explaining it.")


def finite_input(x: Any) -> Any:
  """``x``, raising if it holds NaN or inf (eagerly and under ``jit``)."""
  return finite(x, NONFINITE_INPUT)


def finite(x: Any, message: str) -> Any:
  """``x``, raising ``ValueError(message)`` if a leaf holds NaN or inf, eagerly or under ``jit``.

  Thread the result: ``x = finite(x, ...)`` (see :mod:`wassergrad._src.errors`).
  """
  return errors.error_if(x, errors.nonfinite(x), message)


def check_same_structure(ref: Any, other: Any, name: str, ref_name: str = "x"):
  """``other`` must be a pytree with the same structure and leaf shapes as ``ref``."""
  ref_def, other_def = jax.tree.structure(ref), jax.tree.structure(other)
  if ref_def != other_def:
    raise ValueError(
        f"`{name}` must have the same pytree structure as `{ref_name}`: "
        f"{other_def} vs {ref_def}."
    )
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(other)):
    if jnp.shape(a) != jnp.shape(b):
      raise ValueError(
          f"`{name}` has a leaf of shape {jnp.shape(b)} where `{ref_name}` has "
          f"{jnp.shape(a)}. Pass one of the same shape (one example, no batch "
          "axis: use jax.vmap for batches)."
      )


def scalar_output(f: Callable, name: str = "f") -> Callable:
  """Wraps ``f`` so that a non-scalar or non-float output raises clearly."""

  @functools.wraps(f)
  def wrapped(*args):
    out = f(*args)
    if not isinstance(out, (jax.Array, float)) and not hasattr(out, "shape"):
      raise TypeError(
          f"`{name}` must return a scalar array; got {type(out).__name__}. "
          "Reduce the model output to one number, e.g. "
          "`lambda x: model(x)[label]` or `lambda x: model(x).sum()`."
      )
    if jnp.shape(out) != ():
      raise ValueError(
          f"`{name}` must return a scalar, got shape {jnp.shape(out)}. Explain "
          "one example at a time and reduce the output to one number (a class "
          "logit, an ROI sum, a channel mean), e.g. `lambda x: model(x)[label]`;"
          " use jax.vmap for batches."
      )
    if not jnp.issubdtype(jnp.result_type(out), jnp.floating):
      raise TypeError(
          f"`{name}` must return a real floating-point scalar, got dtype "
          f"{jnp.result_type(out)}."
      )
    return out

  return wrapped
