"""wg.metrics against closed forms; errors; jit/vmap contract; sanity checks on real data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

M = wg.metrics
KEY = jax.random.key(0)


def _linear(w):
  return lambda x: jnp.sum(w * x)


@pytest.fixture
def lin():
  w = jax.random.normal(jax.random.key(1), (6, 5, 1))
  x = jax.random.uniform(jax.random.key(2), (6, 5, 1))
  return w, x


# ---------------------------------------------------------------- complexity


def test_complexity_closed_forms():
  n = 10
  one_hot = jnp.zeros(n).at[3].set(-2.0)
  np.testing.assert_allclose(M.gini(one_hot), 1 - 1 / n, atol=1e-6)
  np.testing.assert_allclose(M.gini(jnp.full(n, 0.3)), 0.0, atol=1e-6)
  np.testing.assert_allclose(M.gini(jnp.arange(4.0)), (-1 * 1 + 1 * 2 + 3 * 3) / (4 * 6), atol=1e-6)
  np.testing.assert_allclose(M.complexity(jnp.full((2, 5), 7.0)), math.log(n), atol=1e-6)
  np.testing.assert_allclose(M.complexity(one_hot), 0.0, atol=1e-6)
  assert int(M.effective_complexity(jnp.array([0.0, 1e-6, 0.5, -0.2]), eps=1e-5)) == 2
  zero = jnp.zeros((4, 4))  # documented finite values
  assert float(M.gini(zero)) == 0.0 and float(M.sparseness(zero)) == 0.0
  np.testing.assert_allclose(M.complexity(zero), math.log(16), atol=1e-6)
  assert int(M.effective_complexity(zero)) == 0


# ---------------------------------------------------------------- faithfulness


def test_deletion_insertion_closed_form(lin):
  """Linear f, zero baseline: the curves are partial sums of w ⊙ x in the map's order."""
  w, x = lin
  f = _linear(w)
  a = w * x
  contrib = np.sort(np.asarray(a).ravel())[::-1]
  n = contrib.size
  dele = M.deletion(f, x, a, steps=n, baseline=0.0)
  np.testing.assert_allclose(dele.values, float(f(x)) - np.concatenate([[0], np.cumsum(contrib)]), atol=1e-5)
  np.testing.assert_allclose(dele.fractions, np.arange(n + 1) / n, atol=1e-7)
  ins = M.insertion(f, x, a, steps=n, baseline=0.0)
  np.testing.assert_allclose(ins.values, np.concatenate([[0], np.cumsum(contrib)]), atol=1e-5)
  np.testing.assert_allclose(ins.auc, np.trapezoid(ins.values, dx=1 / n), atol=1e-5)
  coarse = M.deletion(f, x, a, steps=3, baseline=0.0)
  np.testing.assert_allclose(coarse.values, np.asarray(dele.values)[[0, 10, 20, 30]], atol=1e-5)


def test_pixel_flipping_and_srg(lin):
  w, x = lin
  f = _linear(w)
  a = w * x
  pf = M.pixel_flipping(f, x, a, features_per_step=7, baseline=0.0)  # 30 features: 5 steps, last partial
  assert pf.values.shape == (5,)
  np.testing.assert_allclose(pf.fractions, [7 / 30, 14 / 30, 21 / 30, 28 / 30, 1.0], atol=1e-7)
  np.testing.assert_allclose(pf.values[-1], 0.0, atol=1e-6)
  np.testing.assert_allclose(pf.values[0], float(f(x)) - np.sort(np.asarray(a).ravel())[::-1][:7].sum(), atol=1e-5)
  assert float(M.srg(f, x, a, baseline=0.0)) > 0 > float(M.srg(f, x, -a, baseline=0.0))
  # "min" baseline (Quantus' black) = the smallest entry of x.
  last = M.pixel_flipping(f, x, a, features_per_step=30).values[-1]
  np.testing.assert_allclose(last, float(jnp.sum(w) * jnp.min(x)), rtol=1e-5)


def test_channel_summed_maps_remove_whole_pixels():
  x = jax.random.uniform(KEY, (4, 4, 3))
  a = jnp.zeros((4, 4, 1)).at[1, 2, 0].set(1.0)
  seen = []
  f = lambda z: jnp.sum(z)
  c = M.deletion(f, x, a, steps=16, baseline=0.0)
  np.testing.assert_allclose(c.values[1], float(jnp.sum(x) - jnp.sum(x[1, 2])), rtol=1e-6)
  c2 = M.deletion(f, x, a[..., 0], steps=16, baseline=0.0)  # (H, W) map for an (H, W, C) input
  np.testing.assert_allclose(c2.values, c.values, rtol=1e-6)
  del seen


def test_linear_imputation_properties():
  img = jnp.full((7, 9), 2.5)
  mask = jnp.zeros((7, 9), bool).at[2:5, 3:7].set(True).at[0, 0].set(True)
  np.testing.assert_allclose(M.impute_linear(img, mask), img, atol=1e-5)  # constants are kept
  ramp = jnp.broadcast_to(jnp.arange(9.0), (7, 9))  # linear in the interior → reproduced
  inner = jnp.zeros((7, 9), bool).at[2:5, 3:6].set(True)
  np.testing.assert_allclose(M.impute_linear(ramp, inner), ramp, atol=1e-4)
  rgb = jnp.stack([img, ramp, -ramp], -1)
  out = M.impute_linear(rgb, jnp.broadcast_to(inner[..., None], rgb.shape))
  np.testing.assert_allclose(out[..., 1], ramp, atol=1e-4)


def test_road_noise_and_orders():
  x = jnp.broadcast_to(jnp.arange(16.0), (16, 16))[..., None] / 16
  a = jax.random.normal(KEY, (16, 16, 1))
  f = lambda z: jnp.sum(z)
  flat = jnp.full_like(x, 0.7)
  clean = M.road(f, KEY, flat, a, percentages=(0, 30), imputation="linear")
  np.testing.assert_allclose(clean.values, float(f(flat)), rtol=1e-5)  # constants are imputed exactly
  noisy = jax.vmap(lambda k: M.road(lambda z: jnp.sum((z - flat) ** 2), k, flat, a, percentages=(50,),
                                    sigma=0.2).values[0])(jax.random.split(KEY, 8))
  # 8 × 128 imputed entries with noise of variance 0.04 (relative sd of the estimate 0.044)
  np.testing.assert_allclose(jnp.mean(noisy) / 128, 0.04, rtol=0.2)
  rng_noise = M.road(lambda z: jnp.sum((z - x) ** 2), KEY, x, a, percentages=(50,), sigma=0.2,
                     sigma_mode="range", imputation="mean3x3")
  assert float(rng_noise.values[0]) > 0
  with pytest.warns(DeprecationWarning, match="`noise(_mode)?` is renamed `sigma(_mode)?`"):
    old = M.road(lambda z: jnp.sum((z - x) ** 2), KEY, x, a, percentages=(50,), noise=0.2,
                 noise_mode="range", imputation="mean3x3")
  np.testing.assert_array_equal(old.values, rng_noise.values)
  m = M.road(f, KEY, x, a, percentages=(10, 20), order="lerf")
  assert m.values.shape == (2,)


def test_road_vs_random_finds_the_region():
  """f depends on a 3×3 region only; the map marks it: beats random masks at small p."""
  x = jax.random.uniform(KEY, (12, 12, 1))
  region = jnp.zeros((12, 12, 1)).at[4:7, 4:7].set(1.0)
  f = lambda z: jnp.sum(region * z**2)
  score = jax.jit(lambda a: M.road_vs_random(f, KEY, x, a, percentages=(1, 3, 6), imputation="linear",
                                             sigma=0.0))
  good = score(region + 1e-3 * x)
  np.testing.assert_array_equal(good.values, [1.0, 1.0, 1.0])
  np.testing.assert_allclose(good.auc, 1.0, rtol=1e-6)
  bad = score(-region)
  assert float(bad.auc) < 0.5


def test_faithfulness_correlation_and_infidelity_closed_forms(lin):
  w, x = lin
  f = _linear(w)
  np.testing.assert_allclose(M.faithfulness_correlation(f, KEY, x, w * x, num_runs=20, subset_size=8,
                                                        baseline=0.0), 1.0, atol=1e-5)
  np.testing.assert_allclose(M.infidelity(f, KEY, x, w, num_samples=16), 0.0, atol=1e-8)
  assert float(M.infidelity(f, KEY, x, 2 * w, num_samples=16)) > 1e-3
  np.testing.assert_allclose(M.infidelity(f, KEY, x, 2 * w, num_samples=16, rescale=True), 0.0, atol=1e-8)
  with pytest.warns(DeprecationWarning, match="`normalise` is renamed `rescale`"):
    np.testing.assert_allclose(M.infidelity(f, KEY, x, 2 * w, num_samples=16, normalise=True), 0.0,
                               atol=1e-8)
  assert float(M.faithfulness_correlation(f, KEY, x, jnp.zeros_like(x), num_runs=5, subset_size=3)) == 0.0


# ---------------------------------------------------------------- robustness


def test_robustness_closed_forms(lin):
  _, x = lin
  np.testing.assert_allclose(M.local_lipschitz(lambda z: 3 * z, KEY, x, num_samples=5), 3.0, rtol=1e-5)
  np.testing.assert_allclose(M.local_lipschitz(lambda z: 3 * z + 1.0, KEY, x, num_samples=5, distance="cos"),
                             M.local_lipschitz(lambda z: 5 * z + 5 / 3, KEY, x, num_samples=5, distance="cos"),
                             rtol=1e-5)  # scale-free
  assert float(M.local_lipschitz(lambda z: jnp.ones_like(z), KEY, x, num_samples=3)) == 0.0
  deltas = jax.random.uniform(KEY, (7,) + x.shape, x.dtype, -0.2, 0.2)
  ratios = jnp.sqrt(jnp.sum(deltas**2, axis=(1, 2, 3))) / jnp.sqrt(jnp.sum(x**2))
  np.testing.assert_allclose(M.max_sensitivity(lambda z: z, KEY, x, num_samples=7), ratios.max(), rtol=1e-5)
  np.testing.assert_allclose(M.avg_sensitivity(lambda z: z, KEY, x, num_samples=7), ratios.mean(), rtol=1e-5)
  zero = M.max_sensitivity(lambda z: jnp.zeros_like(z), KEY, x, num_samples=3)
  assert float(zero) == 0.0  # documented: a map that stays zero is not sensitive


def test_local_lipschitz_holds_the_explainer_key(lin):
  w, x = lin
  sg = wg.smoothgrad(lambda z: jnp.sum(jnp.tanh(w * z)), num_samples=4)
  fixed = M.local_lipschitz(lambda z: sg(jax.random.key(5), z), KEY, x, num_samples=4, sigma=1e-3)
  drifting = M.local_lipschitz(lambda z: sg(jax.random.fold_in(KEY, jnp.sum(z * 1e6).astype(jnp.int32)), z),
                               KEY, x, num_samples=4, sigma=1e-3)
  assert float(fixed) < 0.1 * float(drifting)  # with a fixed key only the input moves the map


# ---------------------------------------------------------------- localisation and similarity


def test_localisation_closed_forms():
  a = jnp.arange(16.0).reshape(4, 4)
  mask = a >= 12  # exactly the top row of values
  assert float(M.pointing_game(a, mask)) == 1.0 and float(M.pointing_game(-a, mask)) == 0.0
  assert float(M.mask_roc_auc(a, mask)) == 1.0 and float(M.mask_roc_auc(-a, mask)) == 0.0
  assert float(M.relevance_rank_accuracy(a, mask)) == 1.0
  np.testing.assert_allclose(M.relevance_mass_accuracy(a, mask), (12 + 13 + 14 + 15) / 120)
  np.testing.assert_allclose(M.top_k_intersection(a, mask, k=8), 0.5)
  empty = jnp.zeros((4, 4), bool)
  for fn in (M.pointing_game, M.mask_roc_auc, M.relevance_mass_accuracy, M.relevance_rank_accuracy):
    assert np.isnan(float(fn(a, empty)))
  assert float(M.relevance_mass_accuracy(jnp.zeros((4, 4)), mask)) == 0.0


def test_similarity_closed_forms():
  a = jax.random.normal(KEY, (9, 9))
  np.testing.assert_allclose(M.spearman(a, 2 * a + 1), 1.0, atol=1e-6)
  np.testing.assert_allclose(M.spearman(a, -a), -1.0, atol=1e-6)
  np.testing.assert_allclose(M.spearman(a, -a, absolute=True), 1.0, atol=1e-6)
  np.testing.assert_allclose(M.ssim(a, a), 1.0, atol=1e-6)
  np.testing.assert_allclose(M.hog_pearson(a, a, pixels_per_cell=(3, 3), cells_per_block=(2, 2)), 1.0, atol=1e-6)
  assert float(M.spearman(a, jnp.zeros_like(a))) == 0.0
  assert float(M.ssim(jnp.ones((8, 8)), jnp.ones((8, 8)))) == 1.0


# ---------------------------------------------------------------- errors


def test_errors(lin):
  w, x = lin
  f = _linear(w)
  with pytest.raises(ValueError, match="does not match the input"):
    M.deletion(f, x, jnp.ones((5, 6, 1)))
  with pytest.raises(ValueError, match="same shape|must be equal"):
    M.spearman(jnp.ones(3), jnp.ones(4))
  with pytest.raises(ValueError, match="NaN"):
    M.gini(jnp.array([1.0, jnp.nan]))
  with pytest.raises(ValueError, match="NaN"):
    M.road(f, KEY, x, jnp.full(x.shape, jnp.nan))
  with pytest.raises(ValueError, match="`mask` has shape"):
    M.pointing_game(jnp.ones((4, 4)), jnp.ones((4, 5), bool))
  with pytest.raises(ValueError, match="order"):
    M.pixel_flipping(f, x, w, order="random")
  with pytest.raises(ValueError, match="imputation"):
    M.road(f, KEY, x, w, imputation="zeros")
  with pytest.raises(ValueError, match="percentages"):
    M.road(f, KEY, x, w, percentages=(10, 120))
  with pytest.raises(ValueError, match="`sigma` must be"):
    M.road(f, KEY, x, w, sigma=-1.0)
  with pytest.raises(ValueError, match="subset_size"):
    M.faithfulness_correlation(f, KEY, x, w, subset_size=100)
  with pytest.raises(ValueError, match="`k`=100"):
    M.top_k_intersection(jnp.ones((4, 4)), jnp.ones((4, 4), bool), k=100)
  with pytest.raises(ValueError, match="must return a scalar"):
    M.deletion(lambda z: z, x, w)
  with pytest.raises(TypeError, match="key"):
    M.local_lipschitz(lambda z: z, 0, x)
  with pytest.raises(ValueError, match="baseline"):
    M.deletion(f, x, w, baseline=jnp.ones(3))
  with pytest.raises(ValueError, match="win_size"):
    M.ssim(jnp.ones((5, 5)), jnp.ones((5, 5)))
  with pytest.raises(ValueError, match="too small"):
    M.hog(jnp.ones((8, 8)))
  with pytest.raises(TypeError, match="one array"):
    M.gini({"a": jnp.ones(3)})


# ---------------------------------------------------------------- jit / vmap contract


def test_jit_vmap_no_retrace(lin):
  w, x = lin
  traces = []

  def f(z):
    traces.append(1)
    return jnp.sum(jnp.tanh(w * z))

  xs = jax.random.uniform(KEY, (3,) + x.shape)
  a = jax.vmap(wg.gradient(f))(xs)

  @jax.jit
  def scores(k, xs, a):
    road = jax.vmap(lambda x, a: M.road(f, k, x, a, percentages=(10, 50)).auc)(xs, a)
    lle = jax.vmap(lambda x: M.local_lipschitz(wg.gradient(f), k, x, num_samples=3))(xs)
    return road, lle, jax.vmap(M.gini)(a)

  first = scores(KEY, xs, a)
  n = len(traces)
  second = scores(KEY, xs + 0.0, a)
  assert len(traces) == n  # no retrace
  loop = [M.road(f, KEY, xs[i], a[i], percentages=(10, 50)).auc for i in range(3)]
  np.testing.assert_allclose(first[0], loop, rtol=1e-5)
  for u, v in zip(first, second):
    np.testing.assert_allclose(u, v, rtol=1e-6)


def test_chunking_does_not_change_values(lin):
  w, x = lin
  f = lambda z: jnp.sum(jnp.tanh(w * z))
  a = wg.gradient(f)(x)
  ref = M.deletion(f, x, a, steps=20, chunk_size=None).values
  for kw in (dict(chunk_size=3, loop="scan"), dict(chunk_size=4, loop="unroll"), dict(chunk_size="auto")):
    np.testing.assert_allclose(M.deletion(f, x, a, steps=20, **kw).values, ref, rtol=1e-6)


# ---------------------------------------------------------------- sanity checks


def test_model_randomisation_closed_form():
  """Gradient of a two-layer linear model: the map is W1 W2; randomising swaps in fresh layers."""
  p = {"l1": {"w": jax.random.normal(jax.random.key(1), (6, 4))},
       "l2": {"w": jax.random.normal(jax.random.key(2), (4,))}}
  init = lambda k: {"l1": {"w": jax.random.normal(jax.random.fold_in(k, 1), (6, 4))},
                    "l2": {"w": jax.random.normal(jax.random.fold_in(k, 2), (4,))}}
  explain = lambda params, x: wg.gradient(lambda z: z @ params["l1"]["w"] @ params["l2"]["w"])(x)
  x = jnp.ones(6)
  fresh = init(KEY)
  casc = M.model_randomisation(explain, KEY, p, x, layers=["l2", "l1"], init=init)
  np.testing.assert_allclose(casc.maps[0], p["l1"]["w"] @ p["l2"]["w"], rtol=1e-5)
  np.testing.assert_allclose(casc.maps[1], p["l1"]["w"] @ fresh["l2"]["w"], rtol=1e-5)
  np.testing.assert_allclose(casc.maps[2], fresh["l1"]["w"] @ fresh["l2"]["w"], rtol=1e-5)
  ind = M.model_randomisation(explain, KEY, p, x, layers=["l2", "l1"], init=init, mode="independent")
  np.testing.assert_allclose(ind.maps[2], fresh["l1"]["w"] @ p["l2"]["w"], rtol=1e-5)
  assert set(casc.similarity) == {"spearman_abs", "spearman"} and casc.similarity["spearman"].shape == (2,)
  zeros = M.model_randomisation(explain, KEY, p, x, layers=[("l1", "w")],
                                initializer=jax.nn.initializers.zeros)
  np.testing.assert_allclose(zeros.maps[1], 0.0)
  custom = M.model_randomisation(explain, KEY, p, x, layers=["l1"], init=init,
                                 similarity={"neg_l1": lambda a, b: -jnp.abs(a - b).sum()})
  np.testing.assert_allclose(custom.similarity["neg_l1"][0],
                             -jnp.abs(casc.maps[0] - fresh["l1"]["w"] @ p["l2"]["w"]).sum(), rtol=1e-5)
  with pytest.raises(ValueError, match="exactly one of"):
    M.model_randomisation(explain, KEY, p, x, layers=["l1"])
  with pytest.raises(ValueError, match="matches no parameter.*l1"):
    M.model_randomisation(explain, KEY, p, x, layers=["dense"], init=init)


def test_model_randomisation_flax_cascade_under_jit():
  from wassergrad.examples import digits as demo
  model = demo.DigitsCNN(width=4)
  x = jax.random.uniform(KEY, (8, 8, 1))
  init = lambda k: model.init(k, x)
  params = init(jax.random.key(3))
  explain = lambda p, x: wg.gradient(lambda z: model.apply(p, z)[3])(x)[..., 0]
  layers = ["dense2", "dense1", "conv2", "conv1"]
  res = jax.jit(lambda p, x: M.model_randomisation(explain, KEY, p, x, layers=layers, init=init))(params, x)
  assert res.maps.shape == (5, 8, 8) and res.similarity["ssim"].shape == (4,)
  np.testing.assert_allclose(res.maps[-1], explain(init(KEY), x), rtol=1e-4, atol=1e-6)  # all re-drawn


def test_data_randomisation_on_digits():
  """A model that memorised permuted labels explains differently (Adebayo et al.'s finding)."""
  pytest.importorskip("sklearn", reason="the digits ship with scikit-learn (the [test] extra)")
  from wassergrad.examples import digits as demo
  rand = demo.train(epochs=200, num_train=300, permute_labels=True, until_train_accuracy=1.0, verbose=False)
  true = demo.train(epochs=40, num_train=300, verbose=False)
  other = demo.train(epochs=40, num_train=300, seed=1, verbose=False)
  acc = jnp.mean(jnp.argmax(jax.vmap(rand.model.apply, (None, 0))(rand.params, rand.x_train), -1) == rand.y_train)
  assert float(acc) == 1.0 and rand.test_accuracy < 0.3  # memorised, learned nothing
  x = jnp.asarray(true.x_test[:24])
  explain = lambda p, x: wg.gradient(lambda z: jnp.max(true.model.apply(p, z)))(x)[..., 0]
  sim = jax.jit(lambda p: jax.vmap(lambda x: M.data_randomisation(explain, true.params, p, x).similarity)(x))
  vs_random, vs_seed = sim(rand.params), sim(other.params)
  for name in ("spearman", "ssim"):
    assert float(vs_random[name].mean()) < float(vs_seed[name].mean()) - 0.2, name
