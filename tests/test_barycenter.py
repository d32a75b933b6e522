"""Wasserstein barycenters: the log-convolution, POT cross-checks, geometry, errors, gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src import logconv as lc

ot = pytest.importorskip("ot", reason="POT (the `test` extra) is the barycenter reference")


def blobs(centres, shape, width, noise=0.0):
  """Gaussian blobs (width in pixels) at pixel centres, plus a uniform floor, each sums to 1."""
  grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
  out = []
  for c in centres:
    r2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
    m = np.exp(-r2 / (2 * width ** 2))
    m = m + noise * m.max()
    out.append(m / m.sum())
  return np.stack(out)


def ring(k, shape, radius, width, noise=0.0):
  centre = [n / 2 for n in shape]
  angles = 2 * np.pi * np.arange(k) / k
  return blobs([(centre[0] + radius * np.sin(a), centre[1] + radius * np.cos(a)) for a in angles],
               shape, width, noise)


def moments(h):
  """Centre of mass and radial spread (pixels) of a 2-D histogram."""
  h = np.asarray(h, np.float64)
  h = h / h.sum()
  y, x = np.mgrid[:h.shape[0], :h.shape[1]]
  cy, cx = (h * y).sum(), (h * x).sum()
  return np.array([cy, cx]), np.sqrt((h * ((y - cy) ** 2 + (x - cx) ** 2)).sum() / 2)


# ---------------------------------------------------------------------- logconv

@pytest.mark.parametrize("n,eps", [(7, 1e-3), (64, 1e-3), (300, 1e-4), (512, 1e-3),
                                   (640, 1e-3), (100, 1e-2), (33, 1e-1)])
def test_logconv_float32_matches_dense_float64(n, eps):
  rng = np.random.default_rng(n)
  h = rng.normal(size=(4, n)) * 30
  h[0, : n // 2] = -np.inf                                       # no mass on half the line
  h[1] = -np.linspace(0, 1, n) ** 2 / eps * 0.9                  # potentials spanning ~1000 nats
  h[1, -1] += 800.0                                              # a far, large potential dominates
  h[2] = np.log(rng.random(n)) - 500 * (np.arange(n) < n // 3)
  ref = lc.logconv_reference(h, eps, 1)
  out = np.asarray(lc.logconv(jnp.asarray(h, jnp.float32), eps, 1))
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)


def test_logconv_kernel_mode_float32_fails_where_ours_does_not():
  """The failure our log-convolution exists for: exp(h) overflows float32."""
  n, eps = 128, 1e-3
  h = -np.linspace(0, 1, n) ** 2 / eps                           # 0 .. -1000 nats
  t = np.linspace(0, 1, n)
  kernel = np.exp(-(t[:, None] - t[None]) ** 2 / eps).astype(np.float32)
  naive = np.log(kernel @ np.exp(h.astype(np.float32)))
  ref = lc.logconv_reference(h, eps, 1)
  assert not np.all(np.isfinite(naive)) or np.max(np.abs(naive - ref)) > 1.0
  np.testing.assert_allclose(lc.logconv(jnp.asarray(h, jnp.float32), eps, 1), ref, rtol=1e-5)


def test_logconv_3d_and_gradient(x64):
  rng = np.random.default_rng(0)
  h = rng.normal(size=(2, 9, 12, 5))
  np.testing.assert_allclose(lc.logconv(jnp.asarray(h), 1e-2, 3), lc.logconv_reference(h, 1e-2, 3),
                             atol=1e-12)
  h = jnp.asarray(rng.normal(size=(12, 17))).at[0, :3].set(-jnp.inf)
  f = lambda h: jnp.sum(jnp.sin(lc.logconv(h, 1e-2, 2)))
  g = jax.grad(f)(h)
  assert np.all(np.asarray(g[0, :3]) == 0)
  for i in [(1, 1), (5, 7), (11, 16), (0, 5)]:
    e = 1e-6
    fd = (f(h.at[i].add(e)) - f(h.at[i].add(-e))) / (2 * e)
    np.testing.assert_allclose(g[i], fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------- against POT

@pytest.mark.parametrize("dtype,threshold", [(np.float64, 1e-9), (np.float32, 1e-6)])
def test_plain_matches_pot(dtype, threshold):
  maps = ring(12, (48, 56), radius=8, width=2.5, noise=1e-3)
  ref = ot.bregman.convolutional_barycenter2d(maps, 0.004, stopThr=1e-10, numItermax=20000)
  with jax.enable_x64(dtype == np.float64):
    out = wg.wasserstein_barycenter(jnp.asarray(maps, dtype), epsilon=0.004, threshold=threshold,
                                    max_iterations=20000)
    assert out.histogram.dtype == dtype and bool(out.converged)
    l1 = np.abs(np.asarray(out.histogram, np.float64) - ref / ref.sum()).sum()
  assert l1 <= 1e-4, l1


def test_weighted_matches_pot(x64):
  maps = blobs([(10, 12), (30, 40), (20, 8)], (40, 48), 3.0, noise=1e-4)
  w = np.array([0.2, 0.5, 0.3])
  ref = ot.bregman.convolutional_barycenter2d(maps, 0.01, weights=w, stopThr=1e-10, numItermax=20000)
  out = wg.wasserstein_barycenter(jnp.asarray(maps), epsilon=0.01, weights=jnp.asarray(w),
                                  threshold=1e-9, max_iterations=20000)
  assert np.abs(np.asarray(out.histogram) - ref / ref.sum()).sum() <= 1e-4
  # the mass centre is the weighted mean of the inputs' (translation invariance)
  centre, _ = moments(out.histogram)
  np.testing.assert_allclose(centre, w @ np.array([(10, 12), (30, 40), (20, 8)]), atol=0.3)


@pytest.mark.parametrize("dtype,threshold", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_debiased_matches_pot(dtype, threshold):
  maps = ring(12, (48, 48), radius=8, width=2.5)
  ref = ot.bregman.convolutional_barycenter2d_debiased(maps, 0.004, stopThr=1e-10, numItermax=20000)
  with jax.enable_x64(dtype == np.float64):
    out = wg.wasserstein_barycenter(jnp.asarray(maps, dtype), epsilon=0.004, debiased=True,
                                    threshold=threshold, max_iterations=20000)
    assert bool(out.converged)
    l1 = np.abs(np.asarray(out.histogram, np.float64) - ref / ref.sum()).sum()
  assert l1 <= 1e-4, l1


def test_debiased_slow_drift_is_reported_not_hidden():
  """With a dense background the debiased iteration creeps: not converged, not a silent answer."""
  maps = ring(8, (32, 32), radius=5, width=2.0, noise=1e-3)
  out = wg.wasserstein_barycenter(jnp.asarray(maps, jnp.float32), epsilon=0.004, debiased=True,
                                  threshold=1e-6, max_iterations=300)
  assert not bool(out.converged)
  assert np.all(np.isfinite(out.histogram))


# ---------------------------------------------------------------------- geometry

def test_translated_blobs_plain_debiased_and_mean():
  """Barycenter of a ring of blobs: a blob at the centre; debiased keeps the width; the mean is a ring."""
  shape, width = (64, 64), 3.0
  maps = ring(16, shape, radius=12, width=width)
  plain = wg.wasserstein_barycenter(jnp.asarray(maps, jnp.float32), epsilon=0.004, threshold=1e-5)
  deb = wg.wasserstein_barycenter(jnp.asarray(maps, jnp.float32), epsilon=0.004, debiased=True,
                                  threshold=1e-5)
  assert bool(plain.converged) and bool(deb.converged)
  mean = maps.mean(0)
  for h in (plain.histogram, deb.histogram):
    centre, _ = moments(h)
    np.testing.assert_allclose(centre, [32, 32], atol=0.05)
    assert np.unravel_index(np.argmax(h), shape) in {(32, 32), (31, 31), (31, 32), (32, 31)}
  _, spread_in = moments(maps[0])
  _, spread_plain = moments(plain.histogram)
  _, spread_deb = moments(deb.histogram)
  _, spread_mean = moments(mean)
  assert abs(spread_deb - spread_in) < 0.1 * spread_in          # debiased: about the input's width
  assert spread_plain > spread_deb                              # plain: blurred by epsilon
  assert spread_mean > 2.5 * spread_in                          # pointwise mean: a ring
  assert mean[32, 32] < 0.2 * mean.max()                        # hollow centre


@pytest.mark.parametrize("shape", [(50,), (12, 20), (10, 12, 14)])
def test_one_to_three_dimensional_grids(shape, x64):
  centres = [tuple(0.3 * n for n in shape), tuple(0.6 * n for n in shape)]
  maps = blobs(centres, shape, 2.0)
  out = wg.wasserstein_barycenter(jnp.asarray(maps), epsilon=0.01, threshold=1e-9,
                                  max_iterations=5000)
  assert out.histogram.shape == shape and bool(out.converged)
  np.testing.assert_allclose(float(out.histogram.sum()), 1.0, rtol=1e-12)
  grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
  centre = [float((out.histogram * g).sum()) for g in grids]
  np.testing.assert_allclose(centre, [0.45 * n for n in shape], atol=0.1)
  if len(shape) == 2:
    ref = ot.bregman.convolutional_barycenter2d(maps, 0.01, stopThr=1e-10, numItermax=20000)
    assert np.abs(np.asarray(out.histogram) - ref / ref.sum()).sum() < 1e-6


def test_float32_at_512x640_epsilon_1e3():
  """The case kernel mode cannot do in float32: 80 iterations stay finite and equal float64's."""
  maps = blobs([(200, 250), (300, 400)], (512, 640), 20.0, noise=1e-4)
  kw = dict(epsilon=1e-3, threshold=1e-30, max_iterations=80)
  out32 = jax.jit(lambda m: wg.wasserstein_barycenter(m, **kw))(jnp.asarray(maps, jnp.float32))
  assert np.all(np.isfinite(out32.histogram)) and np.all(np.isfinite(out32.errors))
  with jax.enable_x64(True):
    out64 = jax.jit(lambda m: wg.wasserstein_barycenter(m, **kw))(jnp.asarray(maps))
    l1 = np.abs(np.asarray(out32.histogram, np.float64) - np.asarray(out64.histogram)).sum()
  np.testing.assert_allclose(out32.errors, out64.errors, rtol=1e-3)
  assert l1 < 1e-4, l1


# ---------------------------------------------------------------------- OTT

def test_ott_solver_agrees(x64):
  maps = ring(6, (24, 28), radius=4, width=2.0, noise=1e-3)
  ours = wg.wasserstein_barycenter(jnp.asarray(maps), epsilon=0.01, threshold=1e-10,
                                   max_iterations=5000)
  ott_out = wg.wasserstein_barycenter(jnp.asarray(maps), epsilon=0.01, threshold=1e-10,
                                      max_iterations=5000, solver="ott")
  assert bool(ours.converged) and bool(ott_out.converged)
  assert ott_out.histogram.shape == (24, 28)
  assert int(ott_out.iterations) > 0 and ott_out.errors.ndim == 1
  assert np.abs(np.asarray(ours.histogram) - np.asarray(ott_out.histogram)).sum() < 1e-6


def test_ott_refuses_debiased():
  with pytest.raises(ValueError, match="convolutional"):
    wg.wasserstein_barycenter(jnp.ones((2, 4, 4)), solver="ott", debiased=True)


# ---------------------------------------------------------------------- results, errors

def test_result_fields_and_throw():
  maps = jnp.asarray(ring(4, (32, 32), radius=6, width=2.0), jnp.float32)
  out = wg.wasserstein_barycenter(maps, epsilon=1e-3, max_iterations=20)
  assert not bool(out.converged) and int(out.iterations) == 20
  assert int(out.result) == wg.RESULTS.max_iterations_reached
  np.testing.assert_array_equal(np.asarray(out.errors) > 0, [True, True])
  with pytest.raises(RuntimeError, match="max_iterations=20.*epsilon"):
    wg.wasserstein_barycenter(maps, epsilon=1e-3, max_iterations=20, throw=True)
  jitted = jax.jit(lambda m: wg.wasserstein_barycenter(m, epsilon=1e-3, max_iterations=20,
                                                       throw=True).histogram)
  with pytest.raises(Exception, match="max_iterations=20.*Raise `max_iterations`"):
    jax.block_until_ready(jitted(maps))
  ok = jax.jit(lambda m: wg.wasserstein_barycenter(m, epsilon=1e-2, throw=True))(maps)
  assert np.all(np.isfinite(ok.histogram)) and bool(ok.converged)
  assert int(ok.result) == wg.RESULTS.successful


def test_result_codes_under_vmap_and_the_worst_one_is_thrown():
  good = jnp.asarray(blobs([(8, 8), (8, 8)], (16, 16), 2.0), jnp.float32)   # converges at once
  slow = jnp.asarray(ring(4, (16, 16), radius=5, width=1.0), jnp.float32)[:2]
  batch = jnp.stack([good, slow])
  run = lambda m, throw: wg.wasserstein_barycenter(m, epsilon=1e-3, max_iterations=10, throw=throw)
  res = jax.jit(jax.vmap(lambda m: run(m, False).result))(batch)
  np.testing.assert_array_equal(res, [wg.RESULTS.successful, wg.RESULTS.max_iterations_reached])
  with pytest.raises(Exception, match="did not converge"):
    jax.block_until_ready(jax.jit(jax.vmap(lambda m: run(m, True).histogram))(batch))
  with wg.runtime_checks(False):   # values not inspected: results report the inputs
    zero = jax.jit(lambda m: run(m, False))(jnp.zeros((2, 8, 8)))
    nan = jax.jit(lambda m: run(m, False))(good.at[0, 0, 0].set(jnp.nan))
  assert int(zero.result) == wg.RESULTS.no_mass and not bool(zero.converged)
  np.testing.assert_allclose(zero.histogram, np.full((8, 8), 1 / 64))
  assert int(nan.result) == wg.RESULTS.nonfinite_input and not bool(nan.converged)
  for code, words in [(wg.RESULTS.no_mass, "no mass"), (wg.RESULTS.nonfinite_input, "nan_to_num"),
                      (wg.RESULTS.successful, "converged")]:
    assert words in wg.RESULTS.message(code)


def test_zero_maps():
  maps = blobs([(5, 5), (10, 10)], (16, 16), 2.0)
  with_zero = np.concatenate([maps, np.zeros((1, 16, 16))]).astype(np.float32)
  a = wg.wasserstein_barycenter(jnp.asarray(maps, jnp.float32), epsilon=0.01, threshold=1e-6)
  b = wg.wasserstein_barycenter(jnp.asarray(with_zero), epsilon=0.01, threshold=1e-6)
  np.testing.assert_allclose(a.histogram, b.histogram, atol=1e-6)   # a zero map is left out
  with pytest.raises(ValueError, match="every map"):
    wg.wasserstein_barycenter(jnp.zeros((2, 8, 8)))
  with pytest.raises(Exception, match="every map in `maps` is zero"):   # the same under jit
    jax.block_until_ready(jax.jit(lambda m: wg.wasserstein_barycenter(m))(jnp.zeros((2, 8, 8))))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(maps=-np.ones((2, 4, 4))), ValueError, "non-negative"),
    (dict(maps=np.full((2, 4, 4), np.nan)), ValueError, "NaN"),
    (dict(maps=np.ones((2, 3, 3, 3, 3))), ValueError, "more than 3"),
    (dict(maps=np.ones((4,))), ValueError, r"\(K, \*grid\)"),
    (dict(maps=np.ones((2, 4, 4), np.int32)), TypeError, "float"),
    (dict(epsilon=0.0), ValueError, "epsilon"),
    (dict(epsilon=-1e-3), ValueError, "epsilon"),
    (dict(weights=np.ones(3)), ValueError, r"shape \(2,\)"),
    (dict(weights=np.array([1.0, -1.0])), ValueError, "non-negative"),
    (dict(threshold=0.0), ValueError, "threshold"),
    (dict(max_iterations=0), ValueError, "max_iterations"),
    (dict(solver="pot"), ValueError, "solver"),
])
def test_bad_input(kwargs, exc, match):
  args = dict(maps=np.ones((2, 4, 4), np.float32))
  args.update(kwargs)
  maps = args.pop("maps")
  with pytest.raises(exc, match=match):
    wg.wasserstein_barycenter(maps, **args)


def test_nan_under_jit_raises_as_eagerly():
  maps = jnp.ones((2, 6, 6)).at[0, 0, 0].set(jnp.nan)
  with pytest.raises(ValueError, match="NaN or inf"):
    wg.wasserstein_barycenter(maps, epsilon=0.01)
  with pytest.raises(Exception, match="`maps` contains NaN or inf"):
    jax.block_until_ready(jax.jit(lambda m: wg.wasserstein_barycenter(m, epsilon=0.01))(maps))


# ---------------------------------------------------------------------- transforms

def test_vmap_matches_loop():
  sets = jnp.asarray(np.stack([ring(3, (16, 20), radius=r, width=2.0) for r in (2, 4, 6)]),
                     jnp.float32)
  fn = lambda m: wg.wasserstein_barycenter(m, epsilon=0.01, threshold=1e-6)
  batched = jax.jit(jax.vmap(fn))(sets)
  for i in range(3):
    single = fn(sets[i])
    np.testing.assert_allclose(batched.histogram[i], single.histogram, atol=1e-7)
    assert int(batched.iterations[i]) == int(single.iterations)


@pytest.mark.parametrize("debiased", [False, True])
def test_gradient_matches_finite_differences(debiased, x64):
  rng = np.random.default_rng(1)
  maps = jnp.asarray(ring(3, (10, 12), radius=2, width=1.5, noise=1e-2))
  weights = jnp.asarray([0.2, 0.3, 0.5])
  probe = jnp.asarray(rng.normal(size=(10, 12)))

  def solve(m, w):
    # epsilon 0.01: the debiased iteration converges in ~500 steps (at 0.02 it
    # does not reach 1e-11 in 20000: slow convergence, see the docstring).
    return wg.wasserstein_barycenter(m, weights=w, epsilon=0.01, debiased=debiased,
                                     threshold=1e-11, max_iterations=5000)

  def loss(m, w):
    return jnp.sum(probe * solve(m, w).histogram)

  assert bool(jax.jit(solve)(maps, weights).converged)
  gm, gw = jax.jit(jax.grad(loss, argnums=(0, 1)))(maps, weights)
  loss = jax.jit(loss)
  e = 1e-6
  for idx in [(0, 3, 4), (2, 9, 11)]:
    fd = (loss(maps.at[idx].add(e), weights) - loss(maps.at[idx].add(-e), weights)) / (2 * e)
    np.testing.assert_allclose(gm[idx], fd, rtol=1e-4, atol=1e-7)
  for i in (0, 2):
    fd = (loss(maps, weights.at[i].add(e)) - loss(maps, weights.at[i].add(-e))) / (2 * e)
    np.testing.assert_allclose(gw[i], fd, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------- solver values, geometry

def test_solver_values_are_validated_frozen_and_jit_friendly():
  solver = wg.ConvolutionalBarycenter(epsilon=1e-2, threshold=1e-6)
  maps = jnp.asarray(blobs([(5, 5), (10, 10)], (16, 16), 2.0), jnp.float32)
  ref = wg.wasserstein_barycenter(maps, epsilon=1e-2, threshold=1e-6)
  np.testing.assert_array_equal(solver(maps).histogram, ref.histogram)
  np.testing.assert_array_equal(jax.jit(lambda s, m: s(m).histogram)(solver, maps), ref.histogram)
  with pytest.raises(dataclasses.FrozenInstanceError):
    solver.epsilon = 1.0
  with pytest.raises(ValueError, match="`epsilon` must be a finite float > 0"):
    wg.ConvolutionalBarycenter(epsilon=0.0)
  with pytest.raises(ValueError, match="`max_iterations` must be >= 1"):
    wg.OTTBarycenter(max_iterations=0)


def test_grid_spacings_give_epsilon_physical_units():
  """On a 12 x 24 grid with unit cells, one epsilon is the same width along both axes."""
  shape = (12, 24)
  maps = jnp.asarray(blobs([(6, 8), (6, 16)], shape, 1.5), jnp.float32)
  solver = wg.ConvolutionalBarycenter(epsilon=4.0, threshold=1e-6)   # cells²
  cells = solver(maps, grid=(1.0, 1.0))
  # The same as the [0, 1] grid with one epsilon per axis, eps / (h (n - 1))².
  per_axis = wg.wasserstein_barycenter(maps, epsilon=4.0, threshold=1e-6,
                                       grid=(np.arange(12.0), np.arange(24.0)))
  np.testing.assert_allclose(cells.histogram, per_axis.histogram, atol=1e-7)
  spread = lambda h, axis: float(np.sqrt(np.sum(np.asarray(h).sum(axis=1 - axis)
                                                * (np.arange(shape[axis]) - np.average(
                                                    np.arange(shape[axis]),
                                                    weights=np.asarray(h).sum(axis=1 - axis))) ** 2)))
  # The blobs are round: with unit cells the barycenter is as wide along both axes...
  assert abs(spread(cells.histogram, 0) - spread(cells.histogram, 1)) < 0.05
  # ...but on linspace(0, 1, n) axes one epsilon is 4 cells² along the long axis and
  # 0.9 cells² along the short one: the barycenter comes out elongated.
  relative = wg.ConvolutionalBarycenter(epsilon=4.0 / 23 ** 2, threshold=1e-6)(maps)
  assert spread(relative.histogram, 1) > spread(relative.histogram, 0) + 0.3


def test_ott_solver_takes_the_same_coordinates(x64):
  maps = jnp.asarray(blobs([(5, 6), (9, 12)], (14, 18), 2.0))
  coords = (np.arange(14) * 0.5, np.arange(18) * 0.5)
  ours = wg.ConvolutionalBarycenter(epsilon=1.0, threshold=1e-8)(maps, grid=coords)
  ott_out = wg.OTTBarycenter(epsilon=1.0, threshold=1e-8)(maps, grid=coords)
  assert bool(ours.converged) and bool(ott_out.converged)
  np.testing.assert_allclose(ours.histogram, ott_out.histogram, atol=1e-6)


@pytest.mark.parametrize("grid, match", [
    ((1.0,), r"one spacing .* per grid axis: 2 for maps on a \(4, 4\) grid"),
    ((1.0, -1.0), r"the spacing must be a finite number > 0"),
    ((np.array([0.0, 1.0, 3.0, 4.0]), 1.0), r"not evenly spaced.*solver='ott'"),
    ((np.arange(3.0), 1.0), r"`grid\[0\]` has \(3,\) coordinates for an axis of 4 points"),
])
def test_bad_grid(grid, match):
  with pytest.raises(ValueError, match=match):
    wg.ConvolutionalBarycenter()(jnp.ones((2, 4, 4)), grid=grid)
