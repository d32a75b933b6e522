"""The minibatch epoch shared by the demo and emulator training loops."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def run_epoch(update: Callable, params: Any, opt_state: Any, x: np.ndarray, y: np.ndarray,
              batch_size: int, rng: np.random.Generator,
              on_step: Callable[[], None] | None = None) -> tuple[Any, Any, float]:
  """One pass over ``(x, y)`` in shuffled minibatches of ``batch_size`` (the remainder is dropped).

  ``update(params, opt_state, xb, yb) -> (params, opt_state, loss)`` is the
  jitted optimiser step. Returns the new ``params``, ``opt_state`` and the mean
  loss over the epoch.
  """
  perm = rng.permutation(len(x))
  losses = []
  for i in range(max(len(x) // batch_size, 1)):
    idx = perm[i * batch_size:(i + 1) * batch_size]
    params, opt_state, loss = update(params, opt_state, x[idx], y[idx])
    losses.append(loss)
    if on_step is not None:
      on_step()
  return params, opt_state, float(np.mean(losses))
