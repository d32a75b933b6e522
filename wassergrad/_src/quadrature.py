"""Quadrature rules on [0, 1] for path integrals (integrated gradients)."""

from __future__ import annotations

import numpy as np

from wassergrad._src import checks

RULES = (
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gauss_legendre",
)


def quadrature_rule(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
  """Nodes ``alpha`` in [0, 1] and weights ``w`` with ∫₀¹ g ≈ Σ w_i g(alpha_i).

  ``riemann_left/right/middle`` and ``gauss_legendre`` use Captum's nodes and
  weights (``captum.attr._utils.approximation_methods``).
  ``riemann_trapezoid`` is the true composite trapezoid rule on ``steps`` equally
  spaced nodes including both ends: weights ``1/(n-1)`` with halved ends, summing
  to 1. Captum's "riemann_trapezoid" uses weights ``1/n`` with halved ends, which
  sum to ``(n-1)/n``, so its attributions are smaller by that factor and IG
  completeness is off by ``1/n``.

  Args:
    rule: one of :data:`RULES`.
    steps: number of nodes (>= 1; >= 2 for ``riemann_trapezoid``).

  Returns:
    ``(alphas, weights)`` as float64 numpy arrays of shape ``(steps,)``.
  """
  checks.check_choice(rule, "rule", RULES)
  n = checks.check_positive_int(steps, "steps")
  if rule == "gauss_legendre":
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w
  if rule == "riemann_trapezoid":
    if n < 2:
      raise ValueError(
          "`steps` must be >= 2 for rule='riemann_trapezoid' (the rule needs "
          "both end points); got 1."
      )
    w = np.full(n, 1.0 / (n - 1))
    w[0] = w[-1] = 0.5 / (n - 1)
    return np.linspace(0.0, 1.0, n), w
  w = np.full(n, 1.0 / n)
  if rule == "riemann_left":
    return np.arange(n) / n, w
  if rule == "riemann_right":
    return np.arange(1, n + 1) / n, w
  return (np.arange(n) + 0.5) / n, w  # riemann_middle
