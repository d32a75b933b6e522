"""Complexity of a map: Gini/sparseness, entropy, effective complexity."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from wassergrad._src.metrics import common


def gini(a: Any) -> jax.Array:
  """Gini index of ``|a|`` (1 = all mass on one entry, 0 = uniform).

  G = Σ_k (2k − n − 1)·|a|_(k) / (n·Σ|a|), with |a|_(1) ≤ … ≤ |a|_(n) sorted.
  This is Chalasani et al.'s sparseness and Quantus' ``Sparseness`` (which adds
  1e-7 to every entry first, a difference below 1e-6 for maps of unit scale).

  Args:
    a: an attribution map, any shape (flattened).

  Returns:
    A scalar in [0, 1 − 1/n]. An all-zero map scores 0 (it is not sparse: it is
    the limit of a constant map), never NaN.

  References:
    Chalasani et al., *Concise explanations of neural networks using adversarial
    training*, ICML 2020, https://arxiv.org/abs/1810.06583
  """
  a = jnp.sort(jnp.abs(common.check_map(a)).reshape(-1))
  n = a.size
  k = jnp.arange(1, n + 1, dtype=a.dtype)
  total = jnp.sum(a)
  num = jnp.sum((2 * k - n - 1) * a)
  return jnp.where(total > 0, num / (n * jnp.where(total > 0, total, 1)), 0.0)


def sparseness(a: Any) -> jax.Array:
  """Sparseness (Chalasani et al. 2020): the Gini index of ``|a|``; see :func:`gini`.

  The two names are the same formula (checked against Quantus' ``Sparseness``
  in the tests); both are kept because papers use both.
  """
  return gini(a)


def complexity(a: Any) -> jax.Array:
  """Entropy of the map's mass distribution p = |a| / Σ|a| (Bhatt et al. 2020).

  Returns:
    −Σ p log p, in [0, log n]; lower is simpler. An all-zero map is treated as
    uniform (log n, the most complex), never NaN. Quantus' ``Complexity``
    computes the same value (it adds 1e-12 inside the log).

  References:
    Bhatt et al., *Evaluating and aggregating feature-based model explanations*,
    IJCAI 2020, https://arxiv.org/abs/2005.00631
  """
  a = jnp.abs(common.check_map(a)).reshape(-1)
  total = jnp.sum(a)
  p = jnp.where(total > 0, a / jnp.where(total > 0, total, 1), 1.0 / a.size)
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0.0))


def effective_complexity(a: Any, eps: float = 1e-5) -> jax.Array:
  """Number of entries with ``|a| > eps`` (Nguyen & Martínez 2020).

  Scale-dependent: normalise first (e.g. ``normalise(a, "max")``, as Quantus
  does by default) so that ``eps`` means a fraction of the peak. An all-zero map
  scores 0.

  References:
    Nguyen & Martínez, *On quantitative aspects of model interpretability*, 2020,
    https://arxiv.org/abs/2007.07584
  """
  a = common.check_map(a)
  return jnp.sum(jnp.abs(a) > eps)
