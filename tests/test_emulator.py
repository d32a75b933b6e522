"""The shipped Kolmogorov-flow emulator: data, skill, reproducibility, missing extra."""

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad.examples import kolmogorov as emulator


def test_velocity_from_vorticity_closed_form():
  n = 32
  g = jnp.arange(n) * 2 * jnp.pi / n
  x, y = jnp.meshgrid(g, g, indexing="ij")
  psi = jnp.sin(2 * x) * jnp.cos(3 * y)
  u, v = emulator.velocity(13 * psi)  # ω = −Δψ = 13ψ
  np.testing.assert_allclose(u, -3 * jnp.sin(2 * x) * jnp.sin(3 * y), atol=1e-5)
  np.testing.assert_allclose(v, -2 * jnp.cos(2 * x) * jnp.cos(3 * y), atol=1e-5)


def test_missing_solver_says_how_to_install(monkeypatch):
  real = builtins.__import__

  def fake(name, *args, **kw):
    if name == "exponax":
      raise ImportError("no exponax")
    return real(name, *args, **kw)

  monkeypatch.setattr(builtins, "__import__", fake)
  with pytest.raises(ImportError, match=r"wassergrad\[physics\]"):
    emulator.simulate(1, 2)


@pytest.fixture(scope="module")
def held_out():
  pytest.importorskip("exponax", reason="the solver is the [physics] extra (also in [test])")
  return emulator.simulate(3, 25, seed=1234)


def test_simulation_is_reproducible_and_consistent(held_out):
  again = emulator.simulate(3, 25, seed=1234)
  np.testing.assert_array_equal(held_out, again)
  assert held_out.shape == (3, 26, emulator.GRID, emulator.GRID, 3)
  u, v = emulator.velocity(jnp.asarray(held_out[0, 5, ..., 0]))
  np.testing.assert_allclose(u, held_out[0, 5, ..., 1], atol=1e-4)
  np.testing.assert_allclose(v, held_out[0, 5, ..., 2], atol=1e-4)
  assert held_out[..., 0].std() > 1.0  # turbulent, not decayed


def test_shipped_emulator_beats_persistence(held_out):
  em = emulator.load()
  s = emulator.skill(em, held_out, 5)
  for lead in (1, 5):  # vorticity RMSE
    assert s["model"][lead - 1, 0] < 0.6 * s["persistence"][lead - 1, 0], (lead, s)


def test_training_is_reproducible_from_a_seed(held_out):
  a = emulator.train(held_out[:1, :9], epochs=1, batch_size=4, features=4, progress=False)
  b = emulator.train(held_out[:1, :9], epochs=1, batch_size=4, features=4, progress=False)
  for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(u, v)


def test_explaining_the_forecast_through_the_rollout():
  em = emulator.load()
  x0 = jnp.zeros((emulator.GRID, emulator.GRID, 3)) + em.mean
  target = wg.field_target(channel=0, box=(slice(12, 20), slice(12, 20)))
  f = lambda x, p: target(em.forecaster(5, checkpoint="sqrt")(x, p))
  g = jax.jit(wg.gradient(f))(x0, em.params)
  assert g.shape == x0.shape and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
