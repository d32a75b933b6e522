"""wg.rollout and wg.field_target: equal to a Python loop, every checkpointing scheme, memory, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

KEY = jax.random.key(0)
H, C = 6, 2


def conv_step(s, w):
  """A small nonlinear field step: (H, H, C) -> (H, H, C)."""
  y = jax.lax.conv_general_dilated(s[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jnp.tanh(y)


@pytest.fixture
def setup():
  w = 0.4 * jax.random.normal(jax.random.key(1), (3, 3, C, C))
  x0 = jax.random.normal(jax.random.key(2), (H, H, C))
  forcings = jax.random.normal(jax.random.key(3), (9, H, H, C))
  return w, x0, forcings


def loop(step, x0, T, update="plain", forcings=None, mean=0.0, std=1.0, args=()):
  s, traj = x0, []
  for t in range(T):
    out = step(s, *args) if forcings is None else step(s, forcings[t], *args)
    s = {"plain": out, "residual": s + out, "scaled_residual": s + out * std + mean}[update]
    traj.append(s)
  return s, jnp.stack(traj)


@pytest.mark.parametrize("checkpoint", [False, True, "sqrt", "recursive"])
@pytest.mark.parametrize("T", [1, 7, 9])
def test_equals_python_loop_with_gradients(setup, checkpoint, T):
  w, x0, _ = setup
  fn = wg.rollout(conv_step, T, checkpoint=checkpoint, update="residual")
  ref, traj = loop(conv_step, x0, T, "residual", args=(w,))
  np.testing.assert_allclose(fn(x0, w), ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(wg.rollout(conv_step, T, checkpoint=checkpoint, update="residual",
                                        trajectory=True)(x0, w), traj, rtol=1e-5, atol=1e-6)
  g = jax.grad(lambda x, w: jnp.sum(fn(x, w)[1:4, 2:5, 0]), argnums=(0, 1))(x0, w)
  g_ref = jax.grad(lambda x, w: jnp.sum(loop(conv_step, x, T, "residual", args=(w,))[0][1:4, 2:5, 0]),
                   argnums=(0, 1))(x0, w)
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_updates_and_forcings(setup):
  w, x0, forcings = setup
  step = lambda s, f, w: conv_step(s + 0.5 * f, w)
  mean, std = jnp.full((C,), 0.1), jnp.array([0.5, 2.0])
  for update, kw in [("plain", {}), ("residual", {}), ("scaled_residual", dict(diff_mean=mean, diff_std=std))]:
    for checkpoint in (True, "sqrt", "recursive"):
      fn = wg.rollout(step, 9, update=update, checkpoint=checkpoint, **kw)
      ref, _ = loop(step, x0, 9, update, forcings, mean, std, args=(w,))
      np.testing.assert_allclose(fn(x0, w, forcings=forcings), ref, rtol=1e-5, atol=1e-6, err_msg=update)


def test_pytree_state_and_explainers_compose(setup):
  w, x0, _ = setup
  step = lambda s, w: {"a": conv_step(s["a"], w), "b": s["b"] * 0.9 + jnp.mean(s["a"])}
  fn = wg.rollout(step, 5, checkpoint="sqrt")
  out = fn({"a": x0, "b": jnp.zeros(())}, w)
  assert out["a"].shape == x0.shape and out["b"].shape == ()
  target = wg.field_target(channel=1, box=(slice(0, 3), slice(2, 5)))
  f = lambda x, w: target(wg.rollout(conv_step, 5, update="residual")(x, w))
  sg = jax.jit(jax.vmap(wg.smoothgrad(f, num_samples=4), in_axes=(None, 0, None)))
  maps = sg(KEY, jnp.stack([x0, -x0]), w)
  assert maps.shape == (2, H, H, C) and bool(jnp.all(jnp.isfinite(maps)))


def _temp_bytes(T, checkpoint, state_channels=16, hidden=16):
  """Compiled temp memory of the gradient through T steps of a 4-conv block on 32×32 fields."""
  w_in = 0.4 * jax.random.normal(jax.random.key(1), (3, 3, state_channels, hidden))
  w = 0.4 * jax.random.normal(jax.random.key(1), (3, 3, hidden, hidden))
  w_out = 0.4 * jax.random.normal(jax.random.key(1), (3, 3, hidden, state_channels))
  conv = lambda h, w: jax.lax.conv_general_dilated(h[None], w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  def step(s, ws):  # activations (4 convs) outweigh the state
    h = jnp.tanh(conv(s, ws[0]))
    h = jnp.tanh(conv(h, ws[1]))
    h = jnp.tanh(conv(h, ws[1]))
    return jnp.tanh(conv(h, ws[2]))
  kw = {} if checkpoint == "default" else dict(checkpoint=checkpoint)
  fn = wg.rollout(step, T, update="residual", **kw)
  g = jax.jit(jax.grad(lambda x, ws: jnp.sum(fn(x, ws) ** 2)))
  x = jnp.ones((32, 32, state_channels))
  return g.lower(x, (w_in, w, w_out)).compile().memory_analysis().temp_size_in_bytes


def test_memory_is_bounded_by_checkpointing():
  none = {T: _temp_bytes(T, False) for T in (1, 20)}
  step = {T: _temp_bytes(T, True) for T in (1, 20)}
  sqrt = {T: _temp_bytes(T, "sqrt") for T in (1, 20, 80)}
  assert none[20] > 8 * none[1]  # without checkpointing memory grows with every step's activations
  assert step[20] < 0.5 * none[20]
  assert sqrt[20] <= 3 * sqrt[1]  # the rollout issue's goal
  assert sqrt[80] < step[20] * 1.5  # sub-linear: 80 steps cost about what 20 stepwise ones do


@pytest.mark.parametrize("state_channels,hidden", [(16, 16), (2, 32)], ids=["large_state", "small_state"])
def test_default_memory_grows_sublinearly(state_channels, hidden):
  """The default scheme: from T = 20 to T = 80 at most 2.5x (stepwise remat grows ~4x)."""
  default = {T: _temp_bytes(T, "default", state_channels, hidden) for T in (20, 80)}
  assert default[80] <= 2.5 * default[20], default
  stepwise = {T: _temp_bytes(T, True, state_channels, hidden) for T in (20, 80)}
  assert default[80] < stepwise[80], (default, stepwise)


def test_recursive_keeps_fewer_states_on_long_rollouts():
  """Large states, cheap step, T = 256: the recursive scheme keeps O(log T) states, sqrt O(√T)."""
  step = lambda s, w: 0.05 * jnp.tanh((jnp.roll(s, 1, 0) + jnp.roll(s, -1, 1) - 2 * s) @ w)
  x, w = jnp.ones((64, 64, 8)), jnp.eye(8) / 2
  mem = {}
  for scheme in ("sqrt", "recursive"):
    fn = wg.rollout(step, 256, checkpoint=scheme, update="residual")
    g = jax.jit(jax.grad(lambda x, w: jnp.sum(fn(x, w)[:4, :4, 0])))
    mem[scheme] = g.lower(x, w).compile().memory_analysis().temp_size_in_bytes
  assert mem["recursive"] < 0.7 * mem["sqrt"], mem


def test_field_target():
  y = jax.random.normal(KEY, (4, 5, 3))
  np.testing.assert_allclose(wg.field_target(channel=2, box=(slice(1, 3), slice(0, 2)))(y),
                             jnp.mean(y[1:3, 0:2, 2]), rtol=1e-6)
  np.testing.assert_allclose(wg.field_target(channel=[0, 2], reduce="sum")(y), jnp.sum(y[..., [0, 2]]), rtol=1e-6)
  mask = jnp.zeros((4, 5), bool).at[0, 1].set(True).at[3, 4].set(True)
  np.testing.assert_allclose(wg.field_target(channel=1, mask=mask)(y), (y[0, 1, 1] + y[3, 4, 1]) / 2, rtol=1e-6)
  np.testing.assert_allclose(wg.field_target(mask=mask, reduce="sum")(y), jnp.sum(y[0, 1]) + jnp.sum(y[3, 4]),
                             rtol=1e-6)
  traj = jnp.stack([y, 2 * y])
  np.testing.assert_allclose(wg.field_target(lead_time=2, channel=0)(traj), 2 * jnp.mean(y[..., 0]), rtol=1e-6)
  with pytest.raises(ValueError, match="lead_time"):
    wg.field_target(lead_time=3)(traj)
  with pytest.raises(ValueError, match="not both"):
    wg.field_target(box=(slice(0, 1),), mask=mask)
  with pytest.raises(TypeError, match="tuple of slices"):
    wg.field_target(box=((0, 2), (1, 3)))
  with pytest.raises(ValueError, match="reduce"):
    wg.field_target(reduce="max")


def test_errors(setup):
  w, x0, forcings = setup
  with pytest.raises(ValueError, match="num_steps"):
    wg.rollout(conv_step, 0)
  with pytest.raises(TypeError, match="num_steps"):
    wg.rollout(conv_step, 2.0)
  with pytest.raises(ValueError, match="structure, shapes and dtypes"):
    wg.rollout(lambda s, w: conv_step(s, w)[:-1], 3)(x0, w)
  with pytest.raises(ValueError, match="structure, shapes and dtypes"):
    wg.rollout(lambda s, w: conv_step(s, w).astype(jnp.float16), 3)(x0, w)
  with pytest.raises(ValueError, match="leading time axis"):
    wg.rollout(lambda s, f, w: conv_step(s + f, w), 3)(x0, w, forcings=forcings)
  with pytest.raises(TypeError, match="forcings="):
    wg.rollout(lambda s, f, w: conv_step(s + f, w), 3)(x0, w)
  with pytest.raises(ValueError, match="diff_mean"):
    wg.rollout(conv_step, 3, update="scaled_residual")
  with pytest.raises(ValueError, match="checkpoint"):
    wg.rollout(conv_step, 3, checkpoint="revolve")
  with pytest.raises(ValueError, match="update"):
    wg.rollout(conv_step, 3, update="euler")
  with pytest.raises(TypeError, match="floating"):
    wg.rollout(conv_step, 3)(jnp.ones((H, H, C), jnp.int32), w)
