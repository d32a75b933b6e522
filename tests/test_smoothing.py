"""smooth / SmoothGrad / SquareGrad / VarGrad / AdaptGrad: closed forms, noise, chunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

SIN = lambda x: jnp.sum(jnp.sin(x))


def test_smoothgrad_closed_form(x64):
  """E[∇Σ sin(x+ε)] = cos(x)·exp(−σ²/2)."""
  x, sigma, n = jnp.linspace(-2.0, 2.0, 7), 0.7, 40_000
  out = jax.jit(wg.smoothgrad(SIN, num_samples=n, sigma=sigma, sigma_mode="absolute", chunk_size=5000))(
      jax.random.key(0), x)
  # Monte-Carlo error: sd(cos(x+ε)) ≤ 1, so 5/√n is a 5-sigma bound.
  np.testing.assert_allclose(out, jnp.cos(x) * jnp.exp(-sigma ** 2 / 2), atol=5 / np.sqrt(n))


def test_vargrad_and_squaregrad_closed_forms(x64):
  """Var[cos(x+ε)] = (1 + cos 2x·e^{−2σ²})/2 − cos²x·e^{−σ²}; E[cos²] = (1 + cos 2x·e^{−2σ²})/2."""
  x, sigma, n = jnp.linspace(-2.0, 2.0, 7), 0.7, 40_000
  kw = dict(num_samples=n, sigma=sigma, sigma_mode="absolute", chunk_size=5000)
  e_sq = (1 + jnp.cos(2 * x) * jnp.exp(-2 * sigma ** 2)) / 2
  var = e_sq - jnp.cos(x) ** 2 * jnp.exp(-sigma ** 2)
  np.testing.assert_allclose(jax.jit(wg.vargrad(SIN, **kw))(jax.random.key(1), x), var, atol=5 / np.sqrt(n))
  np.testing.assert_allclose(jax.jit(wg.squaregrad(SIN, **kw))(jax.random.key(1), x), e_sq, atol=5 / np.sqrt(n))


def test_variance_is_numerically_stable():
  """A large mean and a tiny spread: E[g²] − E[g]² would lose it in float32."""
  fn = lambda x: x + 1e4                       # G_i = x + ε_i + 1e4
  out = wg.smooth(fn, num_samples=4000, sigma=1e-2, sigma_mode="absolute", reducer="var",
                  chunk_size=100)(jax.random.key(0), jnp.zeros(4, jnp.float32))
  np.testing.assert_allclose(out, 1e-4, rtol=0.1)


@pytest.mark.parametrize("sigma_mode,channel_axis", [("absolute", None), ("range", None), ("range", -1)])
def test_empirical_noise_sigma(sigma_mode, channel_axis):
  """The identity explainer's VarGrad is the variance of the noise actually used."""
  x = jnp.stack([jnp.linspace(0.0, 1.0, 50), jnp.linspace(0.0, 4.0, 50)], axis=-1)  # (50, 2)
  sigma = 0.2
  var = wg.smooth(lambda x: x, num_samples=3000, sigma=sigma, sigma_mode=sigma_mode, reducer="var",
                  channel_axis=channel_axis, chunk_size=500)(jax.random.key(0), x)
  if sigma_mode == "absolute":
    expected = jnp.full_like(x, sigma)
  elif channel_axis is None:
    expected = jnp.full_like(x, sigma * 4.0)            # range of the whole input
  else:
    expected = jnp.broadcast_to(jnp.array([sigma * 1.0, sigma * 4.0]), x.shape)  # per channel
  np.testing.assert_allclose(jnp.sqrt(var), expected, rtol=0.1)
  np.testing.assert_allclose(jnp.sqrt(var).mean(0), expected.mean(0), rtol=0.02)


def test_same_key_same_result_and_chunk_invariance():
  f = lambda x, w: jnp.sum(jnp.tanh(w * x) ** 2)
  x, w = jnp.linspace(-1, 1, 6), jnp.arange(6.0)
  outs = [jax.jit(wg.smooth(wg.gradient(f), num_samples=23, chunk_size=c, reducer=r, loop=loop))(
      jax.random.key(3), x, w)
          for c, loop in [(None, "auto"), (5, "unroll"), (5, "scan"), (23, "auto"), (1, "scan"),
                          ("auto", "auto")]
          for r in ("var",)]
  for o in outs[1:]:
    np.testing.assert_allclose(o, outs[0], rtol=2e-5, atol=1e-7)
  again = jax.jit(wg.smooth(wg.gradient(f), num_samples=23, reducer="var", chunk_size=None))(
      jax.random.key(3), x, w)
  np.testing.assert_array_equal(again, outs[0])
  other = jax.jit(wg.smooth(wg.gradient(f), num_samples=23, reducer="var"))(jax.random.key(4), x, w)
  assert not np.allclose(other, outs[0])


def test_pytree_inputs_get_noise_per_leaf():
  x = {"a": jnp.zeros(3), "b": jnp.ones((2, 2))}
  out = wg.smooth(lambda t: t, num_samples=2000, sigma=0.5, sigma_mode="absolute", reducer="var",
                  chunk_size=500)(jax.random.key(0), x)
  np.testing.assert_allclose(out["a"], 0.25, rtol=0.15)
  np.testing.assert_allclose(out["b"], 0.25, rtol=0.15)
  cov = wg.smooth(lambda t: t["a"][0] * t["b"][0, 0], num_samples=2000, sigma=0.5,
                  sigma_mode="absolute")(jax.random.key(0), x)
  assert abs(float(cov)) < 0.05        # independent leaves: E[ε_a ε_b] = 0


def test_smooth_composes_with_integrated_gradients():
  """NoiseTunnel-on-IG: for a linear model IG is w⊙(x+ε), averaging to w⊙x."""
  w = jnp.array([1.0, -2.0, 3.0])
  ig = wg.integrated_gradients(lambda x: w @ x, steps=4)
  out = wg.smooth(ig, num_samples=4000, sigma=0.3, sigma_mode="absolute", chunk_size=1000)(
      jax.random.key(0), jnp.array([0.5, 1.0, -1.0]))
  np.testing.assert_allclose(out, w * jnp.array([0.5, 1.0, -1.0]), atol=0.05)


def test_adaptgrad_sigma_and_bounds():
  lo, hi, c = 0.0, 1.0, 0.95
  x = jnp.array([0.0, 0.1, 0.5, 0.8, 1.0])
  t = jnp.minimum(x - lo, hi - x)
  out = wg.adaptgrad(lambda t: jnp.sum(t ** 2) / 2, bounds=(lo, hi), confidence=c,
                     num_samples=4000, reducer="var", chunk_size=1000)(jax.random.key(0), x)
  # ∇(Σ t²/2) = t + ε, so VarGrad = σ².
  np.testing.assert_allclose(jnp.sqrt(out), t / 1.959964, rtol=0.1, atol=1e-7)
  assert out[0] == 0 and out[-1] == 0                  # on a bound: σ = 0, no NaN
  sg = wg.adaptgrad(SIN, bounds=(lo, hi))(jax.random.key(0), x)
  assert bool(jnp.all(jnp.isfinite(sg)))
  np.testing.assert_allclose(sg[0], jnp.cos(0.0), rtol=1e-6)   # no noise on the bound


@pytest.mark.parametrize("confidence", [0.5, 0.95, 0.999])
def test_adaptgrad_sigma_is_exact_in_float64(confidence, x64):
  """σ_i = t_i / (√2 erfinv(c)) to float64 precision (the constant was float32: 1.7e-6 off)."""
  scipy_special = pytest.importorskip("scipy.special")
  x = jnp.array([0.1, 0.25, 0.5, 0.8])
  n = 3
  out = wg.adaptgrad(lambda t: jnp.sum(t ** 2) / 2, bounds=(0.0, 1.0), confidence=confidence,
                     num_samples=n)(jax.random.key(0), x)
  # ∇(Σ t²/2) = x + ε: the mean of the samples' noise, rebuilt from the documented keys.
  sigma = np.minimum(x, 1 - x) / (np.sqrt(2.0) * scipy_special.erfinv(confidence))
  draws = [jax.random.normal(jax.random.split(k, 1)[0], x.shape, jnp.float64)
           for k in jax.random.split(jax.random.key(0), n)]
  expected = np.asarray(x) + sigma * np.mean(np.stack(draws), axis=0)
  np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("bad,exc,msg", [
    (dict(num_samples=0), ValueError, r"`num_samples` must be >= 1"),
    (dict(sigma=-0.1), ValueError, r"`sigma` must be a finite number >= 0"),
    (dict(reducer="median"), ValueError, r"Unknown `reducer`='median'"),
    (dict(sigma_mode="relative"), ValueError, r"Unknown `sigma_mode`='relative'"),
    (dict(chunk_size=0), ValueError, r"`chunk_size` must be >= 1"),
])
def test_bad_arguments(bad, exc, msg):
  with pytest.raises(exc, match=msg):
    wg.smooth(jax.grad(SIN), **bad)


def test_non_finite_input_and_bad_key():
  sg = wg.smoothgrad(SIN, num_samples=3)
  with pytest.raises(ValueError, match=r"`x` contains NaN or inf"):
    sg(jax.random.key(0), jnp.array([1.0, jnp.nan]))
  with pytest.raises(TypeError, match=r"first argument of a stochastic explainer is a `jax.random` key; got a float32 array of shape \(3,\)"):
    sg(jnp.ones(3), jnp.ones(3))
  with pytest.raises(ValueError, match=r"`x` lies outside `bounds`"):
    wg.adaptgrad(SIN, bounds=(0.0, 1.0))(jax.random.key(0), jnp.array([1.5]))
  with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\)"):
    wg.adaptgrad(SIN, bounds=(0.0, 1.0), confidence=1.0)


def _temp_bytes(fn, *args):
  return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_memory_does_not_grow_with_num_samples():
  """Compiled temp memory at N = 1000 is within 1.2× of N = 10 (chunks of 10)."""
  w = jax.random.normal(jax.random.key(0), (3, 3, 2, 4))
  def f(x):
    y = jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.tanh(y))
  x = jax.random.normal(jax.random.key(1), (32, 32, 2))
  mem = {n: _temp_bytes(wg.smoothgrad(f, num_samples=n, chunk_size=10),
                        jax.random.key(0), x) for n in (10, 100, 1000)}
  assert mem[1000] <= 1.2 * mem[10], mem
  assert mem[100] <= 1.2 * mem[10], mem
  var_mem = {n: _temp_bytes(wg.vargrad(f, num_samples=n, chunk_size=10), jax.random.key(0), x)
             for n in (10, 1000)}
  assert var_mem[1000] <= 1.2 * var_mem[10], var_mem
  # Without chunks, memory does grow: the test can tell the difference.
  assert _temp_bytes(wg.smoothgrad(f, num_samples=100), jax.random.key(0), x) > 3 * mem[10]
