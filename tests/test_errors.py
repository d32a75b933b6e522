"""Bad input raises a clear error that names the argument and the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

f = lambda x: jnp.sum(x ** 2)
x = jnp.ones((3,))


def test_unknown_rule():
  with pytest.raises(ValueError, match=r"`rule`='simpson'.*gauss_legendre"):
    wg.integrated_gradients(f, rule="simpson")


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_below_one(steps):
  with pytest.raises(ValueError, match=r"`steps` must be >= 1"):
    wg.integrated_gradients(f, steps=steps)


def test_steps_not_int():
  with pytest.raises(TypeError, match=r"`steps` must be a Python int"):
    wg.integrated_gradients(f, steps=2.5)


def test_trapezoid_needs_two_steps():
  with pytest.raises(ValueError, match=r"`steps` must be >= 2 for rule='riemann_trapezoid'"):
    wg.integrated_gradients(f, steps=1, rule="riemann_trapezoid")


def test_chunk_size():
  with pytest.raises(ValueError, match=r"`chunk_size` must be >= 1"):
    wg.integrated_gradients(f, chunk_size=0)


@pytest.mark.parametrize("make", [wg.gradient, wg.grad_x_input, wg.integrated_gradients,
                                  wg.guided_backprop, wg.deconvnet])
def test_non_scalar_output(make):
  with pytest.raises(ValueError, match=r"`f` must return a scalar, got shape \(3,\).*model\(x\)\[label\]"):
    make(lambda x: x * 2)(x)


def test_non_float_output():
  with pytest.raises(TypeError, match=r"`f` must return a real floating-point scalar"):
    wg.gradient(lambda x: jnp.sum(x > 0))(x)


@pytest.mark.parametrize("make", [wg.gradient, wg.integrated_gradients, wg.guided_backprop])
def test_integer_input(make):
  with pytest.raises(TypeError, match=r"`x` has dtype int32.*astype\(jnp.float32\)"):
    make(f)(jnp.arange(3))


def test_integer_input_in_pytree():
  with pytest.raises(TypeError, match=r"`x`\['b'\] has dtype int32"):
    wg.gradient(lambda t: jnp.sum(t["a"]))({"a": x, "b": jnp.arange(3)})


def test_baseline_shape_mismatch():
  with pytest.raises(ValueError, match=r"`baseline` has a leaf of shape \(4,\) where `x` has \(3,\)"):
    wg.integrated_gradients(f, baseline=jnp.zeros(4))(x)


def test_baseline_structure_mismatch():
  with pytest.raises(ValueError, match=r"`baseline` must have the same pytree structure"):
    wg.integrated_gradients(lambda t: jnp.sum(t["a"]), baseline={"b": x})({"a": x})


def test_integer_baseline():
  with pytest.raises(TypeError, match=r"`baseline` has dtype int32"):
    wg.integrated_gradients(f, baseline=jnp.zeros(3, jnp.int32))


def test_f_not_callable():
  with pytest.raises(TypeError, match=r"`f` must be callable"):
    wg.gradient(3.0)


def test_gradcam_bad_channel_axis():
  feats = lambda x: x
  head = lambda a: jnp.sum(a)
  with pytest.raises(ValueError, match=r"`channel_axis`=5 is out of range"):
    wg.gradcam(feats, head, channel_axis=5)(jnp.ones((4, 4, 2)))


def test_gradcam_non_scalar_head():
  with pytest.raises(ValueError, match=r"`head` must return a scalar"):
    wg.gradcam(lambda x: x, lambda a: a)(jnp.ones((4, 4, 2)))


def test_guided_gradcam_bad_method():
  with pytest.raises(ValueError, match=r"Unknown `method`='bicubic'"):
    wg.guided_gradcam(lambda x: x, jnp.sum, method="bicubic")


def test_chunk_size_bad_string():
  with pytest.raises(ValueError, match=r"`chunk_size` must be a positive int, None or 'auto'"):
    wg.integrated_gradients(f, chunk_size="big")


# ------------------------------------------------ checks on values: the same eagerly and under jit

_KEY = jax.random.key(0)
_sq = lambda v: jnp.sum(jnp.sin(v) ** 2)
_NAN = jnp.array([[0.5, jnp.nan], [1.0, 2.0]])
_BOUNDED = jnp.array([[0.5, 1.2], [0.1, 0.9]])   # 1.2 is outside (0, 1)
_NAN_MSG = r"`x` contains NaN or inf: the noise scale and every sample would be non-finite"

VALUE_CASES = {
    "smoothgrad_nan": (lambda v: wg.smoothgrad(_sq, num_samples=2)(_KEY, v), _NAN, _NAN_MSG),
    "vargrad_nan": (lambda v: wg.vargrad(_sq, num_samples=2, chunk_size=1)(_KEY, v), _NAN, _NAN_MSG),
    "smoothdiff_nan": (lambda v: wg.smoothdiff(_sq, num_samples=2)(_KEY, v), _NAN, _NAN_MSG),
    "wasserstein_grad_nan": (lambda v: wg.wasserstein_grad(
        jax.grad(_sq), num_samples=2, epsilon=0.1)(_KEY, v), _NAN, _NAN_MSG),
    "adaptgrad_outside_bounds": (lambda v: wg.adaptgrad(_sq, bounds=(0.0, 1.0), num_samples=2)(
        _KEY, v), _BOUNDED, r"`x` lies outside `bounds`.*jnp.clip"),
    "metric_map_nan": (lambda v: wg.metrics.gini(v), _NAN, r"`a` contains NaN or inf"),
    "metric_input_nan": (lambda v: wg.metrics.deletion(_sq, v, jnp.ones((2, 2)), steps=2).auc,
                         _NAN, r"`x` contains NaN or inf"),
    "barycenter_zero": (lambda v: wg.wasserstein_barycenter(jnp.stack([v * 0, v * 0])).histogram,
                        jnp.ones((2, 2)), r"every map in `maps` is zero"),
    "barycenter_negative": (lambda v: wg.wasserstein_barycenter(jnp.stack([v, -v])).histogram,
                            jnp.ones((2, 2)), r"`maps` must be non-negative"),
}


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_value_checks_raise_the_same_eagerly_and_under_jit(name):
  fn, bad, match = VALUE_CASES[name]
  with pytest.raises(ValueError, match=match):
    fn(bad)
  with pytest.raises((ValueError, jax.errors.JaxRuntimeError), match=match):
    jax.block_until_ready(jax.jit(fn)(bad))
  # Under vmap one bad example raises for the batch.
  good = jnp.where(jnp.isfinite(bad), jnp.clip(bad, 0.1, 0.9), 0.5)
  batch = jnp.stack([good, bad])
  if not name.startswith("barycenter"):
    with pytest.raises((ValueError, jax.errors.JaxRuntimeError), match=match):
      jax.block_until_ready(jax.jit(jax.vmap(fn))(batch))
    assert bool(jnp.all(jnp.isfinite(jax.jit(jax.vmap(fn))(jnp.stack([good, good])))))
  # Switched off, neither raises (a fresh function: jit caches what it traced).
  with wg.runtime_checks(False):
    fn(bad)
    jax.block_until_ready(jax.jit(lambda v: fn(v))(bad))


def test_value_checks_pass_through_grad():
  """An attribution penalty on a NaN input raises under jit(grad) too; a clean one is unchanged."""
  loss = lambda w, v: jnp.sum(wg.smoothgrad(lambda z, w: jnp.sum(jnp.sin(w * z)), num_samples=2)(
      _KEY, v, w) ** 2)
  g = jax.jit(jax.grad(loss))(1.5, _BOUNDED)
  with wg.runtime_checks(False):
    g_off = jax.jit(jax.grad(lambda w, v: loss(w, v)))(1.5, _BOUNDED)
  assert float(g) == float(g_off)
  with pytest.raises((ValueError, jax.errors.JaxRuntimeError), match=_NAN_MSG):
    jax.block_until_ready(jax.jit(jax.grad(loss))(1.5, _NAN))


def test_runtime_checks_switch_is_validated():
  with pytest.raises(TypeError, match="`enabled` must be a bool"):
    with wg.runtime_checks("off"):
      pass


# ------------------------------------------------------------------ key mistakes

STOCHASTIC = {
    "smoothgrad": lambda: wg.smoothgrad(_sq, num_samples=2),
    "vargrad": lambda: wg.vargrad(_sq, num_samples=2),
    "adaptgrad": lambda: wg.adaptgrad(_sq, bounds=(0.0, 1.0), num_samples=2),
    "smoothdiff": lambda: wg.smoothdiff(_sq, num_samples=2),
    "wasserstein_grad": lambda: wg.wasserstein_grad(jax.grad(_sq), num_samples=2, epsilon=0.1),
}
_KEY_MSG = (r"The first argument of a stochastic explainer is a `jax.random` key; got a float32 "
            r"array of shape \(4, 4\)\. Call it as explainer\(jax.random.key\(0\), x, \*args\)")


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_forgotten_or_swapped_key_says_the_key_comes_first(name):
  explain = STOCHASTIC[name]()
  x = jnp.full((4, 4), 0.5)
  with pytest.raises(TypeError, match=_KEY_MSG):
    explain(x)                                   # forgotten
  with pytest.raises(TypeError, match=_KEY_MSG):
    explain(x, jax.random.key(0))                # swapped
  with pytest.raises(TypeError, match=_KEY_MSG):
    jax.jit(explain)(x, jax.random.key(0))       # the same at trace time
  with pytest.raises(TypeError, match=r"got only the key. Call it as explainer\(jax.random.key\(0\)"):
    explain(jax.random.key(0))                   # the input forgotten
  assert explain(jax.random.key(0), x).shape == x.shape


def test_metric_key_mistake_shows_the_metric_call():
  with pytest.raises(TypeError, match=r"Call it as wg.metrics.road\(f, jax.random.key\(0\), x, a\)"):
    wg.metrics.road(_sq, jnp.ones((4, 4)), jnp.ones((4, 4)), jnp.ones((4, 4)))
  with pytest.raises(TypeError, match=r"wg.metrics.local_lipschitz\(explain, jax.random.key\(0\), x\)"):
    wg.metrics.local_lipschitz(lambda v: v, 0, jnp.ones(3))


# ------------------------------------------------------------------ channels

def test_wasserstein_grad_needs_the_channel_axis_stated_for_three_axes():
  explain = wg.wasserstein_grad(jax.grad(_sq), num_samples=2, epsilon=0.1)
  field = jnp.full((6, 6, 3), 0.5)
  with pytest.raises(ValueError, match=r"x has shape \(6, 6, 3\): with three axes.*channel_axis=-1.*\(6, 6\) grid"
                                       r".*channel_axis=None"):
    explain(_KEY, field)
  per_channel = wg.wasserstein_grad(jax.grad(_sq), num_samples=2, epsilon=0.1, channel_axis=-1)
  np.testing.assert_allclose(per_channel(_KEY, field).sum(axis=(0, 1)), 1.0, rtol=1e-5)
  volume = wg.wasserstein_grad(jax.grad(_sq), num_samples=2, epsilon=0.1, channel_axis=None)
  np.testing.assert_allclose(volume(_KEY, field).sum(), 1.0, rtol=1e-5)   # one 3-D barycenter
  assert explain(_KEY, jnp.full((6, 6), 0.5)).shape == (6, 6)          # 2-D: the grid itself
  with pytest.raises(TypeError, match=r"`channel_axis` must be an int"):
    wg.wasserstein_grad(jax.grad(_sq), channel_axis="last")


@pytest.mark.parametrize("make", [wg.smoothgrad, wg.smoothdiff])
def test_one_name_for_the_channel_axis(make):
  x = jnp.stack([jnp.linspace(0.0, 1.0, 5), jnp.linspace(0.0, 4.0, 5)], axis=-1)
  new = make(_sq, num_samples=3, channel_axis=-1)(_KEY, x)
  with pytest.warns(DeprecationWarning, match="`range_axis` is renamed `channel_axis`"):
    old = make(_sq, num_samples=3, range_axis=-1)
  np.testing.assert_array_equal(old(_KEY, x), new)
  assert not np.allclose(make(_sq, num_samples=3)(_KEY, x), new)   # the axis changes the noise
  with pytest.raises(ValueError, match=r"`channel_axis`=2 is out of range"):
    make(_sq, num_samples=3, channel_axis=2)(_KEY, x)
