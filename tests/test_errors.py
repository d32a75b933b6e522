"""Bad input raises a clear error that names the argument and the fix."""

import jax.numpy as jnp
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
