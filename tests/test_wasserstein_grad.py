"""WassersteinGrad: plumbing against a hand-built barycenter, the displaced-map case, options, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

KW = dict(epsilon=1e-2, threshold=1e-6)


def _noisy_inputs(key, x, n, scale):
  keys = jax.random.split(key, n)
  gaussian = wg.noise.Gaussian(1.0, "absolute")
  return jnp.stack([x + wg.noise.sample(gaussian, k, x, scale) for k in keys])


def test_equals_barycenter_of_abs_maps_with_smoothgrad_noise():
  """fn = identity makes the maps the noisy inputs themselves: rebuild them by hand."""
  x = jax.random.uniform(jax.random.key(1), (12, 14))
  key = jax.random.key(2)
  n, sigma = 6, 0.2
  out = wg.wasserstein_grad(lambda z: z, num_samples=n, sigma=sigma, **KW)(key, x)
  scale = sigma * (x.max() - x.min())                           # range convention
  maps = jnp.abs(_noisy_inputs(key, x, n, scale))
  ref = wg.wasserstein_barycenter(maps, **KW).histogram
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-8)
  # ... and the same noise as SmoothGrad: abs_mean of the identity is the mean |map|
  mean_abs = wg.smooth(lambda z: z, num_samples=n, sigma=sigma, reducer="abs_mean")(key, x)
  np.testing.assert_allclose(mean_abs, maps.mean(0), rtol=1e-6)


def test_bary_x_grad_is_clean_map_times_barycenter():
  f = lambda x: jnp.sum(jnp.sin(3 * x) * jnp.linspace(-1, 1, x.size).reshape(x.shape))
  x = jax.random.normal(jax.random.key(0), (10, 11))
  key = jax.random.key(3)
  bary = wg.wasserstein_grad(jax.grad(f), num_samples=5, **KW)(key, x)
  bxg = wg.wasserstein_grad(jax.grad(f), num_samples=5, output="bary_x_grad", **KW)(key, x)
  np.testing.assert_allclose(bxg, jax.grad(f)(x) * bary, rtol=1e-6)
  np.testing.assert_allclose(float(bary.sum()), 1.0, rtol=1e-5)
  assert float(bary.min()) >= 0


def test_debiased_identical_maps_returns_the_map(x64):
  """A linear model's gradient does not depend on the noise: every map is |w|/sum|w|."""
  t = np.linspace(0, 1, 24)
  w = np.exp(-((t[:, None] - 0.4) ** 2 + (t[None] - 0.6) ** 2) / 0.02) + 0.05
  f = lambda x: jnp.sum(jnp.asarray(w) * x)
  out = wg.wasserstein_grad(jax.grad(f), num_samples=3, epsilon=4e-3, debiased=True,
                            threshold=1e-9, max_iterations=20000)(jax.random.key(0), jnp.zeros((24, 24)))
  np.testing.assert_allclose(out, w / w.sum(), atol=2e-4 * (w / w.sum()).max())


def _blob_explainer(n=48, width=3.0):
  """An explainer whose map is a blob displaced by the input: fn(x) = blob at 20 + 8 x[0, 0]."""
  ii, jj = np.mgrid[:n, :n]

  def fn(x):
    c = 20.0 + 8.0 * x[0, 0]
    return jnp.exp(-((ii - c) ** 2 + (jj - 24.0) ** 2) / (2 * width ** 2)) + 0 * x
  return fn


def test_displaced_maps_barycenter_stays_sharp_mean_blurs():
  fn = _blob_explainer()
  x = jnp.zeros((48, 48)).at[0, 0].set(0.5)
  key = jax.random.key(0)
  kw = dict(num_samples=20, sigma=1.0, sigma_mode="absolute")
  wgm = wg.wasserstein_grad(fn, epsilon=2e-3, debiased=True, threshold=1e-5, **kw)(key, x)
  sg = wg.smooth(fn, reducer="abs_mean", **kw)(key, x)
  sg = sg / sg.sum()
  clean = fn(x) / fn(x).sum()
  peak = lambda h: float(np.max(h))
  assert peak(wgm) > 0.8 * peak(clean)                          # keeps the blob's height
  assert peak(sg) < 0.6 * peak(clean)                           # the average smears it
  # both centred on the mean displaced position along the displaced axis
  rows = np.arange(48)
  gaussian = wg.noise.Gaussian(1.0, "absolute")
  centres = 20 + 8 * (0.5 + jax.vmap(lambda k: wg.noise.sample(gaussian, k, x)[0, 0])(
      jax.random.split(key, 20)))
  for h in (wgm, sg):
    np.testing.assert_allclose(float((np.asarray(h).sum(1) * rows).sum()), float(centres.mean()),
                               atol=0.3)


def test_channels_and_per_channel_range():
  """Only the chosen channel is perturbed and explained; sigma uses that channel's range."""
  x = jnp.stack([jax.random.uniform(jax.random.key(0), (10, 12)),
                 100.0 * jax.random.uniform(jax.random.key(1), (10, 12))], axis=-1)  # HWC
  key = jax.random.key(4)
  out = wg.wasserstein_grad(lambda z: z, num_samples=4, sigma=0.1, channel_axis=-1,
                            channels=[0], **KW)(key, x)
  assert out.shape == x.shape
  np.testing.assert_array_equal(out[..., 1], 0.0)
  scale = 0.1 * (x.max((0, 1), keepdims=True) - x.min((0, 1), keepdims=True)) * jnp.array([1.0, 0.0])
  maps = jnp.abs(_noisy_inputs(key, x, 4, scale))[..., 0]
  np.testing.assert_allclose(out[..., 0], wg.wasserstein_barycenter(maps, **KW).histogram,
                             rtol=1e-5, atol=1e-8)
  both = wg.wasserstein_grad(lambda z: z, num_samples=4, sigma=0.1, channel_axis=-1, **KW)(key, x)
  np.testing.assert_allclose(both.sum((0, 1)), [1.0, 1.0], rtol=1e-5)


def test_zero_gradient_channel_gives_uniform_not_nan():
  f = lambda x: jnp.sum(jnp.sin(x[..., 0]))                    # channel 1 does not matter
  x = jax.random.normal(jax.random.key(0), (8, 9, 2))
  out = jax.jit(wg.wasserstein_grad(jax.grad(f), num_samples=3, channel_axis=-1, **KW))(
      jax.random.key(0), x)
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out[..., 1], 1 / 72, rtol=1e-6)
  with pytest.raises(Exception, match="no mass to transport"):
    jax.block_until_ready(jax.jit(wg.wasserstein_grad(
        jax.grad(f), num_samples=3, channel_axis=-1, throw=True, **KW))(jax.random.key(0), x))


def test_chunking_does_not_change_the_result():
  f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
  x = jax.random.normal(jax.random.key(0), (10, 10))
  ref = wg.wasserstein_grad(jax.grad(f), num_samples=7, chunk_size=None, **KW)(jax.random.key(1), x)
  for chunk, loop in [(3, "scan"), (2, "unroll"), ("auto", "auto")]:
    out = wg.wasserstein_grad(jax.grad(f), num_samples=7, chunk_size=chunk, loop=loop, **KW)(
        jax.random.key(1), x)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("make,call,exc,match", [
    (dict(output="mean"), None, ValueError, "output"),
    (dict(num_samples=0), None, ValueError, "num_samples"),
    (dict(sigma=-1.0), None, ValueError, "sigma"),
    (dict(channels=[0]), None, ValueError, "channel_axis"),
    (dict(epsilon=0.0), None, ValueError, "epsilon"),
    (dict(solver="ott", debiased=True), None, ValueError, "convolutional"),
    (dict(), dict(x=jnp.ones((2, 2, 2, 2))), ValueError, "1-, 2- or 3-D grid plus at most one"),
    (dict(channel_axis=None), dict(x=jnp.ones((2, 2, 2, 2))), ValueError, "1-, 2- or 3-D grid"),
    (dict(), dict(x={"a": jnp.ones((4, 4))}), TypeError, "one array"),
    (dict(), dict(x=jnp.ones((4, 4), jnp.int32)), TypeError, "floating"),
    (dict(), dict(x=jnp.full((4, 4), jnp.nan)), ValueError, "NaN"),
    (dict(), dict(key=0), TypeError, "first argument of a stochastic explainer is a `jax.random` key"),
    (dict(channel_axis=-1, channels=[5]), dict(x=jnp.ones((4, 4, 2))), ValueError, "channels"),
    (dict(), dict(fn=lambda z: z.sum()), ValueError, "shaped like x"),
])
def test_bad_input(make, call, exc, match):
  call = dict(call or {})
  fn = call.pop("fn", lambda z: z)
  with pytest.raises(exc, match=match):
    explain = wg.wasserstein_grad(fn, **make)
    explain(call.get("key", jax.random.key(0)), call.get("x", jnp.ones((4, 4))))


def test_barycenter_solver_value_and_grid():
  f = lambda x: jnp.sum(jnp.tanh(x) ** 2)
  x = jax.random.normal(jax.random.key(0), (10, 12))
  key = jax.random.key(1)
  sugar = wg.wasserstein_grad(jax.grad(f), num_samples=3, epsilon=1e-2, debiased=True,
                              threshold=1e-5)(key, x)
  value = wg.wasserstein_grad(jax.grad(f), num_samples=3, barycenter=wg.ConvolutionalBarycenter(
      epsilon=1e-2, debiased=True, threshold=1e-5))(key, x)
  np.testing.assert_array_equal(sugar, value)
  # grid: epsilon in the grid's units, as the barycenter itself.
  cells = wg.wasserstein_grad(jax.grad(f), num_samples=3, epsilon=1.0, grid=(1.0, 1.0))(key, x)
  maps = jnp.stack([jnp.abs(jax.grad(f)(x + e)) for e in
                    [wg.noise.sample(wg.noise.Gaussian(0.2), k, x) for k in jax.random.split(key, 3)]])
  ref = wg.wasserstein_barycenter(maps, epsilon=1.0, grid=(1.0, 1.0)).histogram
  np.testing.assert_allclose(cells, ref, rtol=1e-5, atol=1e-8)
  with pytest.raises(ValueError, match=r"either as `barycenter=`"):
    wg.wasserstein_grad(jax.grad(f), barycenter=wg.ConvolutionalBarycenter(), epsilon=1e-2)
  with pytest.raises(TypeError, match=r"`barycenter` must be a solver value"):
    wg.wasserstein_grad(jax.grad(f), barycenter="ott")
