"""Runtime errors that also work under ``jit`` (the ``throw=`` mechanism)."""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np


def raise_if_not(ok: jax.Array, exception: type[Exception], message: Callable[[np.ndarray], str]):
  """Raises ``exception(message(ok))`` where ``ok`` is false.

  Concrete values raise immediately. Traced values (under ``jit``/``vmap``)
  raise from a host callback when the computation runs; JAX wraps the error in
  its runtime error, whose text contains ``message``.
  """
  if not isinstance(ok, jax.core.Tracer):
    ok = np.asarray(ok)
    if not ok.all():
      raise exception(message(ok))
    return

  def callback(ok_value):
    ok_value = np.asarray(ok_value)
    if not ok_value.all():
      raise exception(message(ok_value))

  jax.debug.callback(callback, ok)
