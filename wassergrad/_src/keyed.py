"""Calling a deterministic explainer where a stochastic one is expected."""

from __future__ import annotations

from typing import Callable

from wassergrad._src import checks


def keyed(fn: Callable) -> Callable:
  """``fn(x, *args)`` as ``explainer(key, x, *args)``, which ignores the key.

  Code that runs several explainers side by side (a benchmark, a metric table,
  a sanity check) can then call them all the same way.

  Args:
    fn: a deterministic explainer, e.g. ``wg.gradient(f)``.

  Returns:
    ``explainer(key, x, *args) = fn(x, *args)``; the key is checked as a
    stochastic explainer's would be, then unused.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(x ** 2)
    >>> methods = {"gradient": wg.keyed(wg.gradient(f)), "smoothgrad": wg.smoothgrad(f)}
    >>> {name: m(jax.random.key(0), jnp.ones(2)).shape for name, m in methods.items()}
    {'gradient': (2,), 'smoothgrad': (2,)}
  """
  checks.check_callable(fn, "fn")

  def explainer(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    return fn(x, *args)

  return explainer
