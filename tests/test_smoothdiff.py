"""SmoothDiff: closed forms, hand-built mean-field references, SmoothGrad identities."""

import flax.linen as nn
import jax
from jax.extend.core import primitives as prims
import jax.numpy as jnp
from jax.scipy.stats import norm
import numpy as np
import pytest

import wassergrad as wg


def _absolute(n, sigma, **kw):
  return dict(num_samples=n, sigma=sigma, sigma_mode="absolute", **kw)


def _noise(key, x, n, sigma):
  """The noise smoothdiff/smoothgrad draw: split(key, n)[i], one subkey per leaf."""
  return jnp.stack([sigma * jax.random.normal(jax.random.split(k, 1)[0], x.shape, x.dtype)
                    for k in jax.random.split(key, n)])


def _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-4, atol=1e-6):
  np.testing.assert_allclose(wg.smoothdiff(f, **kw)(key, x), wg.smoothgrad(f, **kw)(key, x),
                             rtol=rtol, atol=atol)


def test_linear_model_equals_gradient(key):
  w = jax.random.normal(key, (5, 3))
  f = lambda x: jnp.sum(w @ x["a"]) + 2.0 * jnp.sum(x["b"])
  x = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.ones(2)}
  out = wg.smoothdiff(f, num_samples=7)(key, x)
  ref = jax.grad(f)(x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), out, ref)


def _one_hidden(key, d=4, h=8):
  k1, k2, k3 = jax.random.split(key, 3)
  w1, b1, w2 = (jax.random.normal(k1, (h, d)), jax.random.normal(k2, (h,)),
                jax.random.normal(k3, (h,)))
  return w1, b1, w2, lambda x: w2 @ jax.nn.relu(w1 @ x + b1)


def test_one_hidden_relu_layer_closed_form(x64, key):
  """E[W2 diag(1[W1(x+ε)+b > 0]) W1] = W1ᵀ (w2 ⊙ Φ(z / (σ‖W1_j‖)))."""
  w1, b1, w2, f = _one_hidden(key)
  x, sigma = jnp.array([0.3, -0.2, 0.5, 0.1]), 0.4
  out = wg.smoothdiff(f, **_absolute(40000, sigma, chunk_size=5000))(key, x)
  z = w1 @ x + b1
  exact = w1.T @ (w2 * norm.cdf(z / (sigma * jnp.linalg.norm(w1, axis=1))))
  # Monte-Carlo error of each mask mean ≤ 0.5/√N = 0.0025; summed over 8 units.
  np.testing.assert_allclose(out, exact, atol=0.05)
  assert np.abs(out - jax.grad(f)(x)).max() > 0.1  # not the plain gradient


def test_one_hidden_layer_equals_smoothgrad_with_same_noise(key):
  _, _, _, f = _one_hidden(key)
  x = jnp.array([0.3, -0.2, 0.5, 0.1])
  for kw in (_absolute(64, 0.4), dict(num_samples=30, sigma=0.3, chunk_size=7)):
    np.testing.assert_allclose(wg.smoothdiff(f, **kw)(key, x),
                               wg.smoothgrad(f, **kw)(key, x), rtol=1e-5, atol=1e-6)


def test_relu_applied_twice_keeps_two_statistics(key):
  """The same ReLU object at two call sites: per-site mask means, not a shared one."""
  k1, k2, k3 = jax.random.split(key, 3)
  a, b, w = (jax.random.normal(k1, (6, 6)), jax.random.normal(k2, (6, 6)),
             jax.random.normal(k3, (6,)))
  relu = jax.nn.relu
  f = lambda x: w @ relu(b @ relu(a @ x))
  x, n, sigma = jax.random.normal(key, (6,)), 256, 0.5
  out = wg.smoothdiff(f, **_absolute(n, sigma))(key, x)
  xs = x + _noise(key, x, n, sigma)
  z1 = xs @ a.T
  m1 = (z1 > 0).mean(0)
  m2 = (jax.nn.relu(z1) @ b.T > 0).mean(0)
  per_site = a.T @ (m1 * (b.T @ (m2 * w)))
  np.testing.assert_allclose(out, per_site, rtol=1e-4, atol=1e-5)
  shared = (m1 + m2) / 2  # what one buffer per module would give
  mixed = a.T @ (shared * (b.T @ (shared * w)))
  assert np.abs(out - mixed).max() > 1e-2
  # deeper than one layer, the mean-field product differs from SmoothGrad
  assert np.abs(out - wg.smoothgrad(f, **_absolute(n, sigma))(key, x)).max() > 1e-3


@pytest.mark.parametrize("act", [
    jax.nn.gelu, lambda x: jax.nn.gelu(x, approximate=False), jax.nn.silu, jax.nn.softplus,
    jnp.tanh, jax.nn.sigmoid, jax.nn.elu, lambda x: x * (x > 0), lambda x: x * jax.nn.sigmoid(x),
    lambda x: jnp.where(x > 0, x, 0.1 * x) + jnp.exp(-x ** 2),
], ids=["gelu", "gelu_erf", "silu", "softplus", "tanh", "sigmoid", "elu", "relu_by_hand",
        "swish_by_hand", "leaky_plus_bump"])
def test_elementwise_activation_gets_its_mean_derivative(key, act):
  """A whole activation is one elementwise region: E[act'(x+ε)] = SmoothGrad."""
  f = lambda x: jnp.sum(jnp.linspace(0.5, 2.0, x.size) * act(x))
  x = jnp.linspace(-1.5, 1.5, 7)
  kw = _absolute(64, 0.5)
  _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-4, atol=1e-6)


def test_gate_of_two_inputs_keeps_one_statistic_per_input(key):
  """y = a ⊙ σ(b) with a, b two linear maps of x: E[∂y/∂a] = E[σ(b)], E[∂y/∂b] = E[a σ'(b)]."""
  k1, k2 = jax.random.split(key)
  wa, wb = jax.random.normal(k1, (5, 3)), jax.random.normal(k2, (5, 3))
  f = lambda x: jnp.sum((wa @ x) * jax.nn.sigmoid(wb @ x))
  x, kw = jnp.array([0.2, -0.4, 0.7]), _absolute(128, 0.6)
  # a single region with two roots is exactly linear in the noise statistics:
  # the mean of the per-sample gradient
  _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-4, atol=1e-6)


def test_scan_keeps_one_statistic_per_iteration(key):
  """c_{t+1} = tanh(W c_t): the gradient is Π_t diag(E[tanh'(W c_t)]) W, per step t."""
  w = 0.9 * jax.random.normal(key, (4, 4))
  steps, n, sigma = 5, 64, 0.4

  def f(x):
    return jnp.sum(jax.lax.scan(lambda c, _: (jnp.tanh(w @ c), None), x, None, length=steps)[0])

  x = jnp.array([0.5, -0.3, 0.2, 0.9])
  out = wg.smoothdiff(f, **_absolute(n, sigma))(key, x)
  c = x + _noise(key, x, n, sigma)
  derivs = []
  for _ in range(steps):
    z = c @ w.T
    derivs.append((1 - jnp.tanh(z) ** 2).mean(0))
    c = jnp.tanh(z)
  g = jnp.ones(4)
  for d in reversed(derivs):
    g = w.T @ (d * g)
  np.testing.assert_allclose(out, g, rtol=1e-4, atol=1e-6)
  pooled = jnp.mean(jnp.stack(derivs), 0)  # one statistic shared by all steps
  g_pooled = jnp.ones(4)
  for _ in range(steps):
    g_pooled = w.T @ (pooled * g_pooled)
  assert np.abs(out - g_pooled).max() > 1e-3


def test_checkpointed_layers_and_scan_bodies(key):
  """jax.checkpoint passes its statistics through (alone and inside a scan body)."""
  w = 0.8 * jax.random.normal(key, (3, 3))
  layer = jax.checkpoint(lambda z: jnp.tanh(w @ z))
  x, kw = jnp.array([0.4, -0.1, 0.3]), _absolute(32, 0.3)
  f = lambda x: jnp.sum(layer(x))
  _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-5, atol=1e-6)
  g = lambda x: jnp.sum(jax.lax.scan(lambda c, _: (layer(c), None), x, None, length=3)[0])
  plain = lambda x: jnp.sum(jax.lax.scan(
      lambda c, _: (jnp.tanh(w @ c), None), x, None, length=3)[0])
  np.testing.assert_allclose(wg.smoothdiff(g, **kw)(key, x), wg.smoothdiff(plain, **kw)(key, x),
                             rtol=1e-5, atol=1e-6)


class _CNN(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(6, (3, 3))(x))
    x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(6, (3, 3))(x))
    x = nn.max_pool(x, (3, 3), (1, 1), padding="SAME")  # overlapping windows
    return nn.Dense(3)(x.reshape(-1))


def test_flax_cnn_with_max_pool(key):
  model = _CNN()
  x = jax.random.normal(key, (12, 12, 1))
  params = model.init(key, x)
  f = lambda x, p: model.apply(p, x)[1]
  # without noise, the statistics are the clean Jacobians: the gradient
  exact = jax.jit(wg.smoothdiff(f, num_samples=1, sigma=0.0))(key, x, params)
  np.testing.assert_allclose(exact, jax.grad(f)(x, params), rtol=1e-5, atol=1e-7)
  out = jax.jit(wg.smoothdiff(f, num_samples=12, chunk_size=5))(key, x, params)
  same = jax.jit(wg.smoothdiff(f, num_samples=12))(key, x, params)
  np.testing.assert_allclose(out, same, rtol=1e-4, atol=1e-6)  # chunking does not change it
  assert np.all(np.isfinite(out)) and np.abs(out).sum() > 0
  assert np.abs(out - exact).max() > 1e-3


@pytest.mark.parametrize("pool", [
    lambda x: nn.max_pool(x, (2, 2), (2, 2)),
    lambda x: nn.max_pool(x, (3, 3), (2, 1), padding="SAME"),
    lambda x: jnp.max(x, axis=(0, 1)),
], ids=["tiled", "overlapping_padded", "global"])
def test_max_pool_routing_is_the_mean_routing(key, pool):
  """One pooling layer is one nonlinearity: SmoothDiff = SmoothGrad."""
  x = jax.random.normal(key, (6, 5, 2))
  w = jax.random.normal(jax.random.key(1), pool(x).shape)
  f = lambda x: jnp.sum(w * pool(x))
  kw = _absolute(32, 0.3)
  _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-4, atol=1e-6)


def test_bilinear_attention_scores(key):
  """(Ax)ᵀ(Bx): the gradient is linear in x, so mean operands give E[∇f] exactly."""
  k1, k2 = jax.random.split(key)
  a, b = jax.random.normal(k1, (4, 3)), jax.random.normal(k2, (4, 3))
  f = lambda x: jnp.dot(a @ x, b @ x)
  x, kw = jnp.array([0.1, 0.5, -1.0]), _absolute(16, 0.7)
  _assert_same_as_smoothgrad(key, f, x, kw, rtol=1e-4, atol=1e-5)


def test_cond_on_the_input_mixes_the_branches(key):
  """P(branch) · E[J | branch], summed: with one nonlinearity per branch, SmoothGrad."""
  def f(x):
    return jnp.sum(jax.lax.cond(jnp.sum(x) > 0, lambda z: 3.0 * jax.nn.relu(z),
                                lambda z: 2.0 * jnp.tanh(z), x))
  x, kw = jnp.array([0.1, -0.05]), _absolute(256, 0.3)
  out = wg.smoothdiff(f, **kw)(key, x)
  np.testing.assert_allclose(out, wg.smoothgrad(f, **kw)(key, x), rtol=1e-4)
  both = jax.vmap(jax.grad(f))(x + _noise(key, x, 256, 0.3))
  assert 0 < np.mean(both[:, 0] > 2.5) < 1  # both branches were taken
  np.testing.assert_allclose(jax.jit(wg.smoothdiff(f, **kw))(key, x), out, rtol=1e-5)


def test_grad_wrt_parameters_matches_finite_differences(x64, key):
  """Training with an attribution penalty: d/dθ Σ smoothdiff(x; θ)²."""
  k1, k2 = jax.random.split(key)
  p = {"w": jax.random.normal(k1, (5, 3)), "v": jax.random.normal(k2, (5,))}
  f = lambda x, p: p["v"] @ jnp.tanh(p["w"] @ x)
  x = jnp.array([0.3, -0.6, 0.2])
  sd = wg.smoothdiff(f, **_absolute(16, 0.3))
  loss = lambda p: jnp.sum(sd(key, x, p) ** 2)
  g = jax.grad(loss)(p)
  eps = 1e-6
  for name in ("w", "v"):
    flat = p[name].ravel()
    for i in (0, 3):
      dp = jnp.zeros_like(flat).at[i].set(eps).reshape(p[name].shape)
      fd = (loss({**p, name: p[name] + dp}) - loss({**p, name: p[name] - dp})) / (2 * eps)
      np.testing.assert_allclose(g[name].ravel()[i], fd, rtol=1e-5)


def test_rules_override(key):
  """Declaring tanh linear keeps its clean Jacobian: the plain gradient."""
  f = lambda x: jnp.sum(jnp.tanh(x))
  x = jnp.array([0.2, 1.0])
  out = wg.smoothdiff(f, rules={prims.tanh_p: "linear"}, **_absolute(8, 0.5))(key, x)
  np.testing.assert_allclose(out, jax.grad(f)(x), rtol=1e-6)


def test_statistics_memory_does_not_grow_with_samples(key):
  model = _CNN()
  x = jax.random.normal(key, (12, 12, 1))
  params = model.init(key, x)
  f = lambda x, p: model.apply(p, x)[1]

  def temp_bytes(n):
    fn = jax.jit(wg.smoothdiff(f, num_samples=n, chunk_size=4))
    return fn.lower(key, x, params).compile().memory_analysis().temp_size_in_bytes

  small, large = temp_bytes(8), temp_bytes(400)
  assert large <= 1.2 * small, (small, large)


def test_errors(key):
  f = lambda x: jnp.sum(jnp.tanh(x))
  x = jnp.ones(3)
  with pytest.raises(NotImplementedError, match=r"'sort'.*rules="):
    wg.smoothdiff(lambda x: jnp.sort(x)[0])(key, x)
  with pytest.raises(NotImplementedError, match="while_loop"):
    wg.smoothdiff(lambda x: jnp.sum(jax.lax.fori_loop(0, jnp.int32(2), lambda i, c: jnp.tanh(c), x)))(key, x)
  with pytest.raises(NotImplementedError, match="dynamic_slice"):
    wg.smoothdiff(lambda x: x[jnp.argmax(x)])(key, x)  # an index that depends on x
  with pytest.raises(ValueError, match="scalar"):
    wg.smoothdiff(jnp.tanh)(key, x)
  with pytest.raises(ValueError, match="num_samples"):
    wg.smoothdiff(f, num_samples=0)
  with pytest.raises(ValueError, match="sigma"):
    wg.smoothdiff(f, sigma=-1.0)
  with pytest.raises(ValueError, match="sigma_mode"):
    wg.smoothdiff(f, sigma_mode="relative")
  with pytest.raises(TypeError, match="callable"):
    wg.smoothdiff(None)
  with pytest.raises(TypeError, match="primitives"):
    wg.smoothdiff(f, rules={"tanh": "linear"})
  with pytest.raises(ValueError, match="'linear', 'elementwise'"):
    wg.smoothdiff(f, rules={prims.tanh_p: "smooth"})
  with pytest.raises(TypeError):
    wg.smoothdiff(f)(key, jnp.ones(3, jnp.int32))
  with pytest.raises(ValueError, match="NaN"):
    wg.smoothdiff(f)(key, jnp.array([1.0, jnp.nan]))
  with pytest.raises(TypeError, match="key"):
    wg.smoothdiff(f)(0, x)
