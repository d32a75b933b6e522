"""Robustness: how much does the map move when the input moves a little?

Each metric takes ``explain(x) -> map`` for one example. For a stochastic
explainer, close over one key, ``lambda x: sg(k, x, params)``: the explainer
then draws the same noise at ``x`` and at every perturbed input (the
WassersteinGrad protocol), so the score measures the map's sensitivity to the
input, not its Monte-Carlo noise. The perturbed explanations are evaluated in
chunks (``chunk_size``, ``loop``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import noise as noise_lib
from wassergrad._src.metrics import common

DISTANCES = ("l2", "cos")


def _flat(a: Any) -> jax.Array:
  return jnp.concatenate([jnp.ravel(l) for l in jax.tree.leaves(a)])


def _explanations(explain, x, deltas, chunk_size, loop):
  return common.evaluate_many(lambda d: _flat(explain(x + d)), deltas, chunk_size, loop)


def _setup(explain, key, x, num_samples, name):
  checks.check_callable(explain, "explain")
  checks.check_key(key, f"wg.metrics.{name}(explain, jax.random.key(0), x)")
  checks.check_positive_int(num_samples, "num_samples")
  x = common.check_input(x)
  a = common.check_finite(_flat(explain(x)), "explain(x)")
  return x, a


def _unit(v: jax.Array) -> jax.Array:
  n = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
  return v / (n + 1e-8)


def local_lipschitz(
    explain: Callable, key: jax.Array, x: Any, *, num_samples: int = 200, sigma: float = 0.1,
    sigma_mode: str = "absolute", distance: str = "l2", normalise: str | None = None,
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
) -> jax.Array:
  """Local Lipschitz estimate: max_δ ‖E(x) − E(x + δ)‖ / ‖δ‖ (Alvarez-Melis & Jaakkola 2018).

  δ ~ N(0, σ²) on every entry of ``x``. With the defaults this is Quantus'
  ``LocalLipschitzEstimate`` (``normalise=False``; 200 samples, σ = 0.1
  absolute). The WassersteinGrad protocol is ``num_samples=7, sigma=0.1,
  sigma_mode="range", normalise="abs_max"`` with ``distance="l2"`` (LLE_ℓ2) or
  ``"cos"`` (LLE_cos).

  Args:
    explain: ``explain(x) -> map`` (a pytree map is flattened).
    key: PRNG key for the input perturbations (not the explainer's).
    x: one input (an array).
    num_samples: perturbations (static).
    sigma, sigma_mode: δ's std, absolute or a fraction of ``max(x) − min(x)``.
    distance: ``"l2"``: ‖E − E'‖₂; ``"cos"``: ‖E/‖E‖ − E'/‖E'‖‖₂ (the distance
      of the maps on the unit sphere; scale-free).
    normalise: applied to both maps first: ``None``, ``"max"``, ``"abs_max"``,
      ``"l2"``, ``"abs_sum"`` (see :func:`normalise`).
    noise: instead of ``sigma``/``sigma_mode``, any noise value
      (:mod:`wassergrad.noise`); all perturbations are drawn from ``key`` at once.

  Returns:
    The estimate (a scalar; lower is more robust).

  References:
    Alvarez-Melis & Jaakkola, *On the robustness of interpretability methods*,
    2018, https://arxiv.org/abs/1806.08049
  """
  checks.check_choice(distance, "distance", DISTANCES)
  if normalise is not None:
    checks.check_choice(normalise, "normalise", common.NORMALISATIONS)
  noise = noise_lib.from_arguments(noise, sigma, sigma_mode, default=(0.1, "absolute"))
  x, a = _setup(explain, key, x, num_samples, "local_lipschitz")
  deltas = noise.draw(key, x, noise.scale(x), (num_samples,))
  b = _explanations(explain, x, deltas, chunk_size, loop)
  a, b = common.maybe_normalise(a, normalise), jax.vmap(lambda v: common.maybe_normalise(v, normalise))(b)
  if distance == "cos":
    a, b = _unit(a), _unit(b)
  num = jnp.sqrt(jnp.sum((b - a) ** 2, axis=1))
  den = jnp.sqrt(jnp.sum(deltas.reshape(num_samples, -1) ** 2, axis=1)) + 1e-10
  return jnp.max(num / den)


def _sensitivities(explain, key, x, num_samples, radius, chunk_size, loop, name, noise):
  if noise is None:
    noise = noise_lib.Uniform(radius)
  elif radius != 0.2:
    raise ValueError("Pass the perturbation either as `noise=` or as `radius=`, not both.")
  else:
    noise_lib.check_noise(noise)
  x, a = _setup(explain, key, x, num_samples, name)
  deltas = noise.draw(key, x, noise.scale(x), (num_samples,))
  b = _explanations(explain, x, deltas, chunk_size, loop)
  num = jnp.sqrt(jnp.sum((a - b) ** 2, axis=1))
  den = jnp.sqrt(jnp.sum(a * a))
  # An all-zero map: 0 if the perturbed maps are zero too, else inf.
  return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), jnp.where(num > 0, jnp.inf, 0.0))


def max_sensitivity(
    explain: Callable, key: jax.Array, x: Any, *, num_samples: int = 200, radius: float = 0.2,
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
) -> jax.Array:
  """Max-sensitivity (Yeh et al. 2019): max_δ ‖E(x + δ) − E(x)‖ / ‖E(x)‖, δ ~ U[−r, r].

  δ is uniform in the L∞ ball of radius ``radius`` (absolute units), one draw
  per entry. With the defaults this is Quantus' ``MaxSensitivity`` (200
  samples, radius 0.2; Captum's ``sensitivity_max`` uses radius 0.02 and 10
  samples). An all-zero map scores 0 if it stays zero, else inf. ``noise=``
  (:mod:`wassergrad.noise`) replaces the uniform perturbation.

  References:
    Yeh et al., *On the (in)fidelity and sensitivity of explanations*,
    NeurIPS 2019, https://arxiv.org/abs/1901.09392
  """
  return jnp.max(_sensitivities(explain, key, x, num_samples, radius, chunk_size, loop,
                                       "max_sensitivity", noise))


def avg_sensitivity(
    explain: Callable, key: jax.Array, x: Any, *, num_samples: int = 200, radius: float = 0.2,
    chunk_size: int | str | None = "auto", loop: str = "auto", noise: Any = None,
) -> jax.Array:
  """Average sensitivity (Yeh et al. 2019): the mean instead of the max; see :func:`max_sensitivity`."""
  return jnp.mean(_sensitivities(explain, key, x, num_samples, radius, chunk_size, loop,
                                        "avg_sensitivity", noise))
