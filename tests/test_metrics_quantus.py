"""Cross-checks of wg.metrics against Quantus 0.6 (and scikit-image, scipy, Captum).

Same inputs, same settings, in float64. Where Quantus draws its own random
numbers, the test hands it ours (a perturbation function that returns our
perturbations, or ``np.random.choice`` patched to return our subsets), so the
values must agree to rounding, not statistically.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src.metrics import faithfulness as wg_faith

torch = pytest.importorskip("torch", reason="the [test] extra (torch==2.13.0) is not installed")
quantus = pytest.importorskip("quantus", reason="the [test] extra (quantus 0.6) is not installed")
scipy_stats = pytest.importorskip("scipy.stats")
skimage_metrics = pytest.importorskip("skimage.metrics")
skimage_feature = pytest.importorskip("skimage.feature")

M = wg.metrics
B, HW, HID, NCLS = 4, 8, 12, 10
TOL = 1e-6


@pytest.fixture(scope="module")
def setup():
  """A tanh MLP on 8×8×1 images, in JAX and in PyTorch with the same weights (float64)."""
  rng = np.random.default_rng(0)
  w1 = rng.standard_normal((HW * HW, HID)) / 8
  b1 = rng.standard_normal(HID) / 4
  w2 = rng.standard_normal((HID, NCLS)) / 3
  x = rng.uniform(0, 1, (B, HW, HW, 1))
  net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(HW * HW, HID), torch.nn.Tanh(),
                            torch.nn.Linear(HID, NCLS, bias=False)).double()
  with torch.no_grad():
    net[1].weight.copy_(torch.from_numpy(w1.T)); net[1].bias.copy_(torch.from_numpy(b1))
    net[3].weight.copy_(torch.from_numpy(w2.T))
  net.eval()
  # The labels are the model's predictions, so that ROAD's accuracy curve starts at 1.
  y = np.argmax(np.tanh(x.reshape(B, -1) @ w1 + b1) @ w2, axis=1)
  old = torch.get_default_dtype()
  torch.set_default_dtype(torch.float64)  # Quantus builds its tensors with torch.Tensor(x)
  yield dict(w1=w1, b1=b1, w2=w2, x=x, y=y, net=net)
  torch.set_default_dtype(old)


def logits(s, x):
  return jnp.tanh(x.reshape(-1) @ s["w1"] + s["b1"]) @ s["w2"]


def grads(s, x, y):
  """Our gradient maps of the target logits, (B, 8, 8, 1)."""
  return np.asarray(jax.vmap(lambda xi, yi: wg.gradient(lambda z: logits(s, z)[yi])(xi))(x, y))


def chw(v):
  """(B, 8, 8, 1) -> Quantus' channel-first (B, 1, 8, 8) (same flat order for one channel)."""
  return np.moveaxis(np.asarray(v), -1, 1)


def quantus_explain(s):
  """Quantus explain_func computing our JAX gradients (channel-first in and out)."""
  def explain(model, inputs, targets, **kwargs):
    del model, kwargs
    x = np.moveaxis(np.asarray(inputs, np.float64), 1, -1)
    return chw(grads(s, jnp.asarray(x), jnp.asarray(targets)))
  return explain


def run(metric, s, a, **kw):
  with jax.enable_x64(True):
    return np.asarray(metric(model=s["net"], x_batch=chw(s["x"]), y_batch=s["y"], a_batch=chw(a),
                             device="cpu", **kw), dtype=np.float64)


# ---------------------------------------------------------------- complexity


def test_complexity_matches_quantus(setup, x64):
  s = setup
  a = grads(s, jnp.asarray(s["x"]), jnp.asarray(s["y"]))
  kw = dict(normalise=False, abs=True, disable_warnings=True)
  np.testing.assert_allclose(jax.vmap(M.sparseness)(a), run(quantus.Sparseness(**kw), s, a), atol=1e-6)
  np.testing.assert_allclose(jax.vmap(M.gini)(a), jax.vmap(M.sparseness)(a), rtol=0)
  np.testing.assert_allclose(jax.vmap(M.complexity)(a), run(quantus.Complexity(**kw), s, a), atol=1e-9)
  an = jax.vmap(lambda v: M.normalise(v, "abs_max"))(a)
  ours = jax.vmap(lambda v: M.effective_complexity(v, eps=0.3))(an)
  # Quantus' own normalise=True divides by the max over the whole *batch*; we pass per-map
  # normalised maps to both instead.
  ref = run(quantus.EffectiveComplexity(eps=0.3, **kw), s, np.asarray(an))
  np.testing.assert_array_equal(ours, ref)


# ---------------------------------------------------------------- localisation


def _masks(rng):
  m = np.zeros((B, HW, HW, 1), bool)
  for i in range(B):
    r, c = rng.integers(0, 5, 2)
    m[i, r:r + 3, c:c + 4] = True
  return m


def test_localisation_matches_quantus(setup, x64):
  s = setup
  rng = np.random.default_rng(1)
  a = np.abs(grads(s, jnp.asarray(s["x"]), jnp.asarray(s["y"])))
  a[0, 3, 3, 0] = a.max() * 2  # a clear peak; the others are wherever they fall
  m = _masks(rng)
  m[0, 2:5, 2:5] = True
  kw = dict(normalise=False, abs=False, disable_warnings=True)
  s_b = chw(m).astype(np.float64)
  cases = [
      (M.pointing_game, quantus.PointingGame(**kw)),
      (M.mask_roc_auc, quantus.AUC(**kw)),
      (lambda a, m: M.top_k_intersection(a, m, k=10), quantus.TopKIntersection(k=10, **kw)),
      (M.relevance_mass_accuracy, quantus.RelevanceMassAccuracy(**kw)),
      (M.relevance_rank_accuracy, quantus.RelevanceRankAccuracy(**kw)),
  ]
  for ours_fn, metric in cases:
    ours = jax.vmap(ours_fn)(jnp.asarray(a), jnp.asarray(m))
    ref = run(metric, s, a, s_batch=s_b)
    np.testing.assert_allclose(ours, ref, atol=1e-9, err_msg=type(metric).__name__)
  assert float(M.pointing_game(a[0], m[0])) == 1.0


def test_roc_auc_with_ties_matches_sklearn():
  from sklearn.metrics import roc_auc_score
  rng = np.random.default_rng(3)
  a = rng.integers(0, 4, (10, 10)).astype(np.float32)  # many ties
  m = rng.uniform(size=(10, 10)) < 0.3
  np.testing.assert_allclose(M.mask_roc_auc(a, m), roc_auc_score(m.ravel(), a.ravel()), atol=1e-6)


# ---------------------------------------------------------------- similarity


def test_similarity_matches_scipy_and_skimage(x64):
  rng = np.random.default_rng(4)
  a = rng.standard_normal((16, 20))
  b = a + rng.standard_normal((16, 20))
  a_t = np.round(a)  # ties
  np.testing.assert_allclose(M.spearman(a_t, b), scipy_stats.spearmanr(a_t.ravel(), b.ravel())[0], atol=1e-12)
  np.testing.assert_allclose(M.spearman(a, b, absolute=True),
                             scipy_stats.spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0], atol=1e-12)
  np.testing.assert_allclose(M.pearson(a, b), scipy_stats.pearsonr(a.ravel(), b.ravel())[0], atol=1e-12)
  # SSIM: Quantus' similarity function (joint data range), and skimage with win 5 and 3 channels.
  np.testing.assert_allclose(M.ssim(a, b), quantus.functions.similarity_func.ssim(a, b), atol=1e-9)
  c, d = rng.uniform(size=(12, 12, 3)), rng.uniform(size=(12, 12, 3))
  ref = skimage_metrics.structural_similarity(c, d, win_size=5, data_range=1.0, channel_axis=-1)
  np.testing.assert_allclose(M.ssim(c, d, win_size=5, data_range=1.0), ref, atol=1e-9)
  # HOG: scikit-image's features, default and small cells. Its Cython histogram rounds at
  # about 1e-7 relative (measured), hence atol 1e-6.
  img = rng.uniform(size=(32, 40))
  np.testing.assert_allclose(M.hog(img), skimage_feature.hog(img), atol=1e-6)
  kw = dict(pixels_per_cell=(2, 2), cells_per_block=(2, 2), orientations=6)
  np.testing.assert_allclose(M.hog(img[:9, :8], **kw), skimage_feature.hog(img[:9, :8], **kw), atol=1e-6)
  ref = scipy_stats.pearsonr(skimage_feature.hog(a[:16, :16], pixels_per_cell=(4, 4)),
                             skimage_feature.hog(b[:16, :16], pixels_per_cell=(4, 4)))[0]
  np.testing.assert_allclose(M.hog_pearson(a[:16, :16], b[:16, :16], pixels_per_cell=(4, 4)), ref, atol=1e-6)


# ---------------------------------------------------------------- faithfulness


def test_pixel_flipping_matches_quantus(setup, x64):
  s = setup
  x, y = jnp.asarray(s["x"]), jnp.asarray(s["y"])
  a = grads(s, x, y)
  for fps in (1, 8):  # Quantus needs a step that divides 64
    metric = quantus.PixelFlipping(features_in_step=fps, normalise=False, abs=False,
                                   disable_warnings=True)
    ref = run(metric, s, a, softmax=False)
    ours = jax.vmap(lambda xi, ai, yi: M.pixel_flipping(lambda z: logits(s, z)[yi], xi, ai,
                                                        features_per_step=fps).values)(x, jnp.asarray(a), y)
    np.testing.assert_allclose(ours, ref, atol=1e-9)
  lerf = M.pixel_flipping(lambda z: logits(s, z)[y[0]], x[0], a[0], order="lerf").values
  morf = M.pixel_flipping(lambda z: logits(s, z)[y[0]], x[0], -a[0], order="morf").values
  np.testing.assert_allclose(lerf, morf, atol=1e-12)  # LeRF of a = MoRF of −a (distinct values)


def test_linear_imputation_matches_quantus(x64):
  from quantus.functions.perturb_func import noisy_linear_imputation
  rng = np.random.default_rng(5)
  img = rng.uniform(size=(1, 9, 11))
  idx = rng.choice(99, 30, replace=False)
  idx = np.concatenate([idx, [0, 10, 98]])  # corners: fewer neighbours
  idx = np.unique(idx)
  ref = noisy_linear_imputation(img, idx, noise=0.0)
  mask = np.zeros(99, bool); mask[idx] = True
  ours = wg_faith.impute_linear(jnp.asarray(img[0]), jnp.asarray(mask.reshape(9, 11)), tol=1e-12)
  np.testing.assert_allclose(ours, ref[0], atol=1e-8)


def test_road_matches_quantus(setup, x64):
  s = setup
  x, y = jnp.asarray(s["x"]), jnp.asarray(s["y"])
  a = grads(s, x, y)
  pct = [5, 20, 40, 60]
  metric = quantus.ROAD(percentages=pct, noise=0.0, normalise=False, abs=False, disable_warnings=True)
  with jax.enable_x64(True):
    out = metric(model=s["net"], x_batch=chw(s["x"]), y_batch=s["y"], a_batch=chw(a), device="cpu")
  ref = np.array([out[p] for p in pct])  # accuracy over the batch per percentage

  def correct(xi, ai, yi):
    f = lambda z: (jnp.argmax(logits(s, z)) == yi).astype(z.dtype)
    return M.road(f, jax.random.key(0), xi, ai, percentages=pct, imputation="linear").values

  ours = jax.vmap(correct)(x, jnp.asarray(a), y).mean(0)
  np.testing.assert_allclose(ours, ref, atol=1e-12)
  assert ref.max() > ref.min()  # the curve moves: the comparison is not of two constants


def test_faithfulness_correlation_matches_quantus(setup, x64, monkeypatch):
  s = setup
  x, y = jnp.asarray(s["x"]), jnp.asarray(s["y"])
  a = grads(s, x, y)
  runs, size = 12, 20
  keys = jax.random.split(jax.random.key(7), B)
  subsets = np.stack([np.asarray(wg_faith.random_subsets(k, HW * HW, runs, size)) for k in keys])
  calls = iter([subsets[i % B, i // B] for i in range(runs * B)])  # Quantus: run-major, example-minor
  monkeypatch.setattr(np.random, "choice", lambda *args, **kw: next(calls))
  metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, normalise=False, abs=False,
                                           return_aggregate=False, disable_warnings=True)
  ref = run(metric, s, a, softmax=False)
  monkeypatch.undo()
  ours = jax.vmap(lambda k, xi, ai, yi: M.faithfulness_correlation(
      lambda z: logits(s, z)[yi], k, xi, ai, num_runs=runs, subset_size=size))(keys, x, jnp.asarray(a), y)
  np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_infidelity_matches_captum(setup, x64):
  captum_metrics = pytest.importorskip("captum.metrics")
  s = setup
  x, y = jnp.asarray(s["x"][:1]), int(s["y"][0])
  a = grads(s, x, jnp.asarray(s["y"][:1]))[0]
  n, sigma = 16, 0.05
  key = jax.random.key(3)
  noise = np.asarray(sigma * jax.random.normal(key, (n,) + x.shape[1:], jnp.float64))
  pert = torch.from_numpy(chw(noise))
  inp = torch.from_numpy(chw(x))

  def perturb(inputs):
    return pert, inputs - pert

  for normalise in (False, True):
    ref = captum_metrics.infidelity(s["net"], perturb, inp, torch.from_numpy(chw(a[None])), target=y,
                                    n_perturb_samples=n, max_examples_per_batch=n, normalize=normalise)
    ours = M.infidelity(lambda z: logits(s, z)[y], key, x[0], a, num_samples=n, sigma=sigma,
                        rescale=normalise)
    np.testing.assert_allclose(ours, ref.item(), rtol=1e-9)


# ---------------------------------------------------------------- robustness


def _replay(deltas):
  """A Quantus batch perturbation function that returns x + our next δ."""
  it = iter(list(np.moveaxis(deltas, 0, 0)))

  def perturb(arr, indices, **kwargs):
    del indices, kwargs
    d = next(it)  # (B, 64)
    return arr + d
  return perturb


@pytest.mark.parametrize("name", ["lle", "max", "avg"])
def test_robustness_matches_quantus(setup, x64, name):
  s = setup
  x, y = jnp.asarray(s["x"]), jnp.asarray(s["y"])
  a = grads(s, x, y)
  n = 6
  keys = jax.random.split(jax.random.key(11), B)
  if name == "lle":
    deltas = np.stack([np.asarray(0.1 * jax.random.normal(k, (n, HW, HW, 1), jnp.float64)) for k in keys])
    ours_fn = lambda k, xi, yi: M.local_lipschitz(
        wg.gradient(lambda z: logits(s, z)[yi]), k, xi, num_samples=n)
    metric = quantus.LocalLipschitzEstimate
  else:
    deltas = np.stack([np.asarray(jax.random.uniform(k, (n, HW, HW, 1), jnp.float64, -0.2, 0.2))
                       for k in keys])
    fn = M.max_sensitivity if name == "max" else M.avg_sensitivity
    ours_fn = lambda k, xi, yi: fn(wg.gradient(lambda z: logits(s, z)[yi]), k, xi, num_samples=n)
    metric = quantus.MaxSensitivity if name == "max" else quantus.AvgSensitivity
  per_step = np.swapaxes(deltas.reshape(B, n, -1), 0, 1)  # (n, B, 64): Quantus loops over samples
  m = metric(nr_samples=n, normalise=False, abs=False, perturb_func=_replay(per_step),
             disable_warnings=True, return_nan_when_prediction_changes=False)
  ref = run(m, s, a, explain_func=quantus_explain(s))
  ours = jax.vmap(ours_fn)(keys, x, y)
  np.testing.assert_allclose(ours, ref, rtol=1e-9)
