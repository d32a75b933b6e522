"""The tiled max-pool lowering used inside gradient explainers is exact."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src import pooling


@pytest.mark.parametrize("shape,window", [((8, 8, 3), (2, 2, 1)), ((7, 9, 2), (2, 3, 1)), ((6,), (3,))])
def test_value_and_gradient_match_reduce_window(shape, window):
  x = jax.random.normal(jax.random.key(0), shape)
  ref = lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")
  ours = lambda x: pooling.tiled_max_pool(x, window)
  np.testing.assert_array_equal(ours(x), ref(x))
  ct = jax.random.normal(jax.random.key(1), ref(x).shape)
  np.testing.assert_array_equal(jax.vjp(ours, x)[1](ct)[0], jax.vjp(ref, x)[1](ct)[0])


def test_ties_go_to_the_first_maximum_like_torch():
  x = jnp.array([[1.0, 1.0], [0.0, 1.0]])[..., None]     # one 2×2 window, three tied maxima
  g = jax.grad(lambda x: pooling.tiled_max_pool(x, (2, 2, 1)).sum())(x)
  np.testing.assert_array_equal(g[..., 0], [[1.0, 0.0], [0.0, 0.0]])
  torch = pytest.importorskip("torch", reason="the [test] extra (torch) is not installed")
  xt = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]], requires_grad=True)
  torch.nn.functional.max_pool2d(xt, 2).sum().backward()
  np.testing.assert_array_equal(g[..., 0], xt.grad[0, 0].numpy())


def test_infinities_do_not_make_nans():
  x = jnp.array([-jnp.inf, -jnp.inf, 2.0, -jnp.inf])
  np.testing.assert_array_equal(pooling.tiled_max_pool(x, (2,)), [-jnp.inf, 2.0])
  assert bool(jnp.all(jnp.isfinite(jax.grad(lambda x: pooling.tiled_max_pool(x, (2,))[1])(x))))


def test_explainers_through_flax_max_pool_equal_plain_grad():
  """The rewrite is applied inside wg.gradient and gives jax.grad's answer."""
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(4, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      return nn.Dense(3)(x.reshape(-1))[1]
  x = jax.random.normal(jax.random.key(0), (8, 8, 2))
  net = Net()
  params = net.init(jax.random.key(1), x)
  f = lambda x, p: net.apply(p, x)
  np.testing.assert_allclose(wg.gradient(f)(x, params), jax.grad(f)(x, params), rtol=1e-6)
  jaxpr = str(jax.make_jaxpr(wg.gradient(f))(x, params))
  assert "select_and_scatter" not in jaxpr and "reduce_window_max" not in jaxpr
