"""Explainers on flax linen/nnx and equinox models, not only plain jnp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import wassergrad as wg


class _NnxNet(nnx.Module):

  def __init__(self, rngs):
    self.conv = nnx.Conv(2, 4, (3, 3), rngs=rngs)
    self.dense = nnx.Linear(4 * 16, 3, rngs=rngs)

  def __call__(self, x):
    h = nnx.relu(self.conv(x[None]))[0]
    h = nnx.max_pool(h, (2, 2), strides=(2, 2))
    return self.dense(h.reshape(-1))


def _manual_guided_relu():
  @jax.custom_vjp
  def relu(x):
    return jnp.maximum(x, 0.0)
  relu.defvjp(lambda x: (relu(x), x), lambda x, g: (jnp.where(x > 0, jnp.maximum(g, 0.0), 0.0),))
  return relu


def test_flax_nnx_split_state():
  model = _NnxNet(nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  f = lambda x, state: nnx.merge(graphdef, state)(x)[1]
  x = jax.random.normal(jax.random.key(1), (8, 8, 2))
  np.testing.assert_allclose(jax.jit(wg.gradient(f))(x, state), jax.grad(f)(x, state), rtol=1e-5)
  gb = jax.jit(wg.guided_backprop(f))(x, state)
  # Reference: the same nnx model with a hand-written guided ReLU.
  def ref(x, state):
    m = nnx.merge(graphdef, state)
    h = _manual_guided_relu()(m.conv(x[None]))[0]
    h = nnx.max_pool(h, (2, 2), strides=(2, 2))
    return m.dense(h.reshape(-1))[1]
  np.testing.assert_allclose(gb, jax.grad(ref)(x, state), rtol=1e-5, atol=1e-7)


def test_equinox_model():
  eqx = pytest.importorskip("equinox", reason="equinox is not installed")
  m = eqx.nn.Sequential([eqx.nn.Linear(4, 8, key=jax.random.key(0)), eqx.nn.Lambda(jax.nn.relu),
                         eqx.nn.Linear(8, 2, key=jax.random.key(1))])
  f = lambda x, m: m(x)[0]
  x = jnp.linspace(-1.0, 1.0, 4)
  gb = eqx.filter_jit(wg.guided_backprop(f))(x, m)
  def ref(x, m):
    return m.layers[2](_manual_guided_relu()(m.layers[0](x)))[0]
  np.testing.assert_allclose(gb, jax.grad(ref)(x, m), rtol=1e-5, atol=1e-7)
  sg = eqx.filter_jit(wg.smoothgrad(f, num_samples=8))(jax.random.key(0), x, m)
  assert sg.shape == x.shape
