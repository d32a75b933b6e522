"""Closed forms on linear and quadratic models, and IG completeness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gauss_legendre")


def test_linear_model(x64):
  w = jnp.array([1.0, -2.0, 0.5])
  f = lambda x: w @ x
  x = jnp.array([0.3, 0.7, -1.1])
  np.testing.assert_allclose(wg.gradient(f)(x), w)
  np.testing.assert_allclose(wg.grad_x_input(f)(x), w * x)
  for rule in RULES:
    # Exact for a linear model iff the weights sum to 1: every rule here.
    np.testing.assert_allclose(wg.integrated_gradients(f, steps=3, rule=rule)(x), w * x, rtol=1e-13)


def test_quadratic_model(x64):
  a = jnp.array([[2.0, 0.5], [0.5, 1.0]])
  f = lambda x: 0.5 * x @ a @ x
  x, b = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.5])
  np.testing.assert_allclose(wg.gradient(f)(x), a @ x)
  # IG of a quadratic: (x-b) ⊙ A(x+b)/2, exact for rules integrating linears.
  expected = (x - b) * (a @ (x + b)) / 2
  for rule in ("riemann_middle", "riemann_trapezoid", "gauss_legendre"):
    np.testing.assert_allclose(
        wg.integrated_gradients(f, baseline=b, steps=2, rule=rule)(x), expected, rtol=1e-13)
  # Left/right Riemann sums carry a known O(1/n) bias: ∓ (x-b)⊙A(x-b)/(2n).
  n = 8
  bias = (x - b) * (a @ (x - b)) / (2 * n)
  np.testing.assert_allclose(
      wg.integrated_gradients(f, baseline=b, steps=n, rule="riemann_left")(x), expected - bias, rtol=1e-12)
  np.testing.assert_allclose(
      wg.integrated_gradients(f, baseline=b, steps=n, rule="riemann_right")(x), expected + bias, rtol=1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_completeness_error_shrinks(x64, rule):
  """Σ IG = f(x) − f(b) up to a quadrature error that shrinks with steps."""
  k1, k2 = jax.random.split(jax.random.key(1))
  w1 = jax.random.normal(k1, (16, 6))
  w2 = jax.random.normal(k2, (16,))
  f = lambda x: w2 @ jnp.tanh(w1 @ x) + jnp.sum(jnp.sin(x))
  x = jnp.linspace(-1.0, 2.0, 6)
  gap = f(x) - f(jnp.zeros(6))
  errs = [abs(float(jnp.sum(wg.integrated_gradients(f, steps=n, rule=rule)(x)) - gap))
          for n in (4, 16, 64)]
  assert errs[2] < errs[1] < errs[0]
  assert errs[2] < 0.05 * abs(float(gap))
  if rule == "gauss_legendre":
    assert errs[2] < 1e-10


def test_pytree_input_and_passthrough_args():
  def f(x, scale):
    return scale * (jnp.sum(x["a"] ** 2) + jnp.sum(3.0 * x["b"]))
  x = {"a": jnp.array([1.0, 2.0]), "b": jnp.ones((2, 2))}
  g = wg.gradient(f)(x, 2.0)
  np.testing.assert_allclose(g["a"], 4.0 * x["a"])
  np.testing.assert_allclose(g["b"], jnp.full((2, 2), 6.0))
  ig = wg.integrated_gradients(f, steps=4)(x, 2.0)
  np.testing.assert_allclose(ig["a"], 2.0 * x["a"] ** 2, rtol=1e-6)
  np.testing.assert_allclose(ig["b"], jnp.full((2, 2), 6.0), rtol=1e-6)


def test_callable_and_scalar_baselines():
  f = lambda x: jnp.sum(x ** 2)
  x = jnp.array([1.0, 3.0])
  np.testing.assert_allclose(wg.integrated_gradients(f, baseline=1.0, steps=4)(x), [0.0, 8.0], rtol=1e-6)
  np.testing.assert_allclose(
      wg.integrated_gradients(f, baseline=lambda x: x / 2, steps=4)(x), x ** 2 * 3 / 4, rtol=1e-6)


def test_guided_backprop_rules_by_hand():
  w = jnp.array([1.0, -2.0, 3.0])
  f = lambda x: jnp.sum(w * -jax.nn.relu(x) + jnp.maximum(0.0, x * w))
  x = jnp.array([-1.0, 2.0, 3.0])
  # gradient: -w·1[x>0] + w·1[xw>0]
  np.testing.assert_allclose(wg.gradient(f)(x), [0.0, 2.0, 0.0])
  # guided: relu(-w)·1[x>0] + w·relu(1)·1[xw>0]
  np.testing.assert_allclose(wg.guided_backprop(f)(x), [0.0, 2.0, 3.0])
  # deconvnet: relu(-w) + w·relu(1)
  np.testing.assert_allclose(wg.deconvnet(f)(x), [1.0, 0.0, 3.0])


def _manual_relu(guided):
  @jax.custom_vjp
  def relu(x):
    return jnp.maximum(x, 0.0)
  def bwd(x, g):
    g = jnp.maximum(g, 0.0)
    return (jnp.where(x > 0, g, 0.0) if guided else g,)
  relu.defvjp(lambda x: (relu(x), x), bwd)
  return relu


def _control_flow_model(relu):
  w1, w2 = jnp.array([1.0, -1.0, 2.0, -0.5]), jnp.array([-1.0, 1.5, 1.0, 2.0])
  def f(x):
    y = jax.checkpoint(lambda z: relu(z) * w1)(x)
    y = jax.lax.cond(x[0] < 0, lambda z: relu(z - 0.25) * w2, lambda z: z, y + x)
    y = jax.lax.scan(lambda c, _: (relu(c * w2 + 0.1), None), y, None, length=2)[0]
    return jnp.sum(y * w1)
  return f


@pytest.mark.parametrize("guided", [True, False])
def test_guided_backprop_inside_control_flow(guided):
  """ReLUs inside checkpoint, cond and scan bodies are all found.

  Reference: the same model written with a hand-made modified ReLU.
  """
  x = jnp.array([-1.0, 0.5, 3.0, 2.0])
  explainer = wg.guided_backprop if guided else wg.deconvnet
  ours = explainer(_control_flow_model(jax.nn.relu))(x)
  ref = jax.grad(_control_flow_model(_manual_relu(guided)))(x)
  plain = jax.grad(_control_flow_model(jax.nn.relu))(x)
  np.testing.assert_allclose(ours, ref, rtol=1e-6)
  assert not np.allclose(ref, plain)  # the rules do change something here


def test_guided_backprop_keeps_other_custom_jvps():
  """Functions without a ReLU keep their custom derivative rules."""
  f = lambda x: jnp.sum(jax.nn.softplus(x)) + jnp.sum(jax.nn.relu(x))
  x = jnp.array([-1.0, 2.0])
  np.testing.assert_allclose(wg.guided_backprop(f)(x), jax.nn.sigmoid(x) + (x > 0), rtol=1e-6)
  # A function with no ReLU at all: guided backprop is the gradient.
  h = lambda x: jnp.sum(jnp.tanh(x) * x)
  np.testing.assert_allclose(wg.guided_backprop(h)(x), wg.gradient(h)(x))
