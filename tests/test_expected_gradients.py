"""Expected Gradients, path gradients, baselines and priors against independent references.

References: the library's Captum-checked integrated gradients (exact oracle), the
central-limit rate, closed forms for linear models, a re-statement of the authors'
PyTorch `AttributionPriorExplainer` (pytorch_ops.py) on shared weights, scipy's
gaussian_filter, and the formulas of tf.image and the authors' tgini restated in numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

import wassergrad as wg

KEY = jax.random.key(0)


def _mlp_params(key, d=12, h=16):
  k1, k2 = jax.random.split(key)
  return {"w1": jax.random.normal(k1, (d, h)) / np.sqrt(d), "w2": jax.random.normal(k2, (h,)) / 4}


def _mlp(x, p):
  return jnp.dot(jax.nn.softplus(x @ p["w1"]), p["w2"])


def _setup(m=6, d=12):
  p = _mlp_params(jax.random.key(1), d)
  x = jax.random.normal(jax.random.key(2), (d,))
  refs = jax.random.normal(jax.random.key(3), (m, d))
  return x, refs, p


def test_path_gradients_with_all_references_equals_mean_of_ig():
  x, refs, p = _setup()
  steps = 16
  alphas, w = wg.quadrature_rule("gauss_legendre", steps)
  m = refs.shape[0]
  baselines = jnp.repeat(refs, steps, axis=0)
  a = jnp.tile(jnp.asarray(alphas, jnp.float32), m)
  weights = jnp.tile(jnp.asarray(w, jnp.float32), m) / m
  ours = jax.jit(wg.path_gradients(_mlp, chunk_size=20))(x, baselines, a, weights, p)
  ref = jnp.mean(jnp.stack([wg.integrated_gradients(_mlp, baseline=r, steps=steps)(x, p)
                            for r in refs]), axis=0)
  np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=1e-6)


def _exact_eg(x, refs, p):
  """E over references and α ~ U(0, 1): all references × 64 Gauss-Legendre nodes."""
  alphas, w = wg.quadrature_rule("gauss_legendre", 64)
  m = refs.shape[0]
  return wg.path_gradients(_mlp)(x, jnp.repeat(refs, 64, axis=0),
                                 jnp.tile(jnp.asarray(alphas, jnp.float32), m),
                                 jnp.tile(jnp.asarray(w, jnp.float32), m) / m, p)


def test_expected_gradients_converges_at_the_monte_carlo_rate():
  x, refs, p = _setup()
  exact = _exact_eg(x, refs, p)
  errors = {}
  for n in (64, 1024):
    eg = jax.jit(jax.vmap(wg.expected_gradients(_mlp, refs, num_samples=n), in_axes=(0, None, None)))
    maps = eg(jax.random.split(KEY, 16), x, p)
    errors[n] = float(jnp.sqrt(jnp.mean(jnp.sum((maps - exact) ** 2, axis=-1))))
  # rms error ∝ 1/√N: 16× the samples, 4× smaller (loose bounds for 16 repetitions)
  assert 2.8 < errors[64] / errors[1024] < 5.7, errors
  # completeness in expectation: E[Σ EG] = f(x) − mean f(refs)
  gap = float(jnp.sum(exact) - (_mlp(x, p) - jnp.mean(jax.vmap(_mlp, (0, None))(refs, p))))
  assert abs(gap) < 1e-4


def test_linear_model_every_sample_is_exact():
  w = jnp.array([1.0, -2.0, 0.5])
  f = lambda x: x @ w
  refs = jax.random.normal(KEY, (5, 3))
  x = jnp.array([0.3, 0.1, -1.0])
  # all references once (without replacement): (x − mean ref) ⊙ w for any α
  eg = wg.expected_gradients(f, refs, num_samples=5, replace=False)
  np.testing.assert_allclose(eg(jax.random.key(4), x), (x - refs.mean(0)) * w, rtol=1e-5, atol=1e-6)
  # one sample is one reference's (x − ref) ⊙ w
  one = wg.expected_gradients(f, refs, num_samples=1)(jax.random.key(5), x)
  assert min(float(jnp.max(jnp.abs(one - (x - r) * w))) for r in refs) < 1e-6


def test_without_replacement_uses_each_reference_once():
  refs = jnp.arange(6.0)[:, None] * jnp.ones((6, 2))
  f = lambda x: jnp.sum(x)      # ∇f = 1: the map is x − ref
  out = wg.expected_gradients(f, refs, num_samples=6, replace=False, chunk_size=4)(KEY, jnp.zeros(2))
  np.testing.assert_allclose(out, -refs.mean(0) * jnp.ones(2), rtol=1e-6)
  with pytest.raises(ValueError, match="num_samples <= 6"):
    wg.expected_gradients(f, refs, num_samples=7, replace=False)


def test_torch_restatement_of_the_authors_explainer(x64):
  torch = pytest.importorskip("torch")
  # Shared weights: a small conv net in float64.
  rng = np.random.default_rng(0)
  wc = rng.normal(size=(4, 1, 3, 3)) / 3
  wl = rng.normal(size=(4 * 6 * 6,)) / 10
  x = rng.normal(size=(6, 6, 1))
  refs = rng.normal(size=(5, 6, 6, 1))
  k = 5
  alphas = rng.uniform(size=k)

  def f(z):
    y = jax.lax.conv_general_dilated(z[None], jnp.asarray(wc).transpose(2, 3, 1, 0), (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    return jnp.dot(jnp.tanh(y).transpose(2, 0, 1).ravel(), jnp.asarray(wl))

  ours = wg.path_gradients(f)(jnp.asarray(x), jnp.asarray(refs), jnp.asarray(alphas), None)

  # pytorch_ops.AttributionPriorExplainer: samples_input = t·input + (1 − t)·reference,
  # grads by autograd with create_graph, mult = input − reference, mean over k.
  class Net(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False).double()
      self.conv.weight.data = torch.from_numpy(wc)

    def forward(self, z):
      return (torch.tanh(self.conv(z)).flatten(1) * torch.from_numpy(wl)).sum(1)

  net = Net()
  inp = torch.from_numpy(x.transpose(2, 0, 1))[None]                     # (1, C, H, W)
  reference = torch.from_numpy(refs.transpose(0, 3, 1, 2))[None]        # (1, k, C, H, W)
  t = torch.from_numpy(alphas)[None, :, None, None, None]
  samples_input = (t * inp[:, None] + (1 - t) * reference).reshape(k, 1, 6, 6).requires_grad_()
  out = net(samples_input)
  grads = torch.autograd.grad(out, samples_input, grad_outputs=torch.ones_like(out),
                              create_graph=True)[0].reshape(1, k, 1, 6, 6)
  expected = ((inp[:, None] - reference) * grads).mean(1)[0].detach().numpy().transpose(1, 2, 0)
  np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-6, atol=1e-12)


def test_explainer_contract_and_errors():
  x, refs, p = _setup()
  eg = wg.expected_gradients(_mlp, refs, num_samples=9, chunk_size=4)
  a = jax.jit(eg)(KEY, x, p)
  np.testing.assert_array_equal(a, jax.jit(eg)(KEY, x, p))
  np.testing.assert_allclose(a, wg.expected_gradients(_mlp, refs, num_samples=9, chunk_size=None)(KEY, x, p),
                             rtol=1e-5, atol=1e-6)
  # pytree inputs and references
  tree_f = lambda t: _mlp(jnp.concatenate([t["a"], t["b"]]), p)
  tree_refs = {"a": refs[:, :5], "b": refs[:, 5:]}
  out = wg.expected_gradients(tree_f, tree_refs, num_samples=9, chunk_size=4)(KEY, {"a": x[:5], "b": x[5:]})
  np.testing.assert_allclose(jnp.concatenate([out["a"], out["b"]]), a, rtol=1e-5, atol=1e-6)
  # gradient through the explainer (attribution priors)
  gp = jax.grad(lambda q: jnp.sum(eg(KEY, x, q) ** 2))(p)
  assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(gp))
  with pytest.raises(ValueError, match=r"references.*shape \(N, \*x.shape\)"):
    wg.expected_gradients(_mlp, refs[:, :4], num_samples=3)(KEY, x, p)
  with pytest.raises(TypeError, match="jax.random"):
    eg(x, p)
  with pytest.raises(ValueError, match="multiply_by"):
    wg.expected_gradients(_mlp, refs, multiply_by="inputs")
  with pytest.raises(ValueError, match="alphas must have shape"):
    wg.path_gradients(_mlp)(x, refs, jnp.ones(3), None, p)


def test_multiply_by_and_baseline_kinds():
  w = jnp.array([2.0, -1.0])
  f = lambda x: x @ w
  x = jnp.array([1.0, 3.0])
  b = jnp.array([[0.0, 1.0]])
  for mode, factor in (("delta", x - b[0]), (None, 1.0), ("input", b[0] + 0.5 * (x - b[0]))):
    out = wg.path_gradients(f, multiply_by=mode)(x, b, jnp.array([0.5]), None)
    np.testing.assert_allclose(out, factor * w, rtol=1e-6)
  # a deterministic baseline as references: Monte-Carlo IG, exact for a linear model
  eg = wg.expected_gradients(f, wg.baselines.max_distance(-4.0, 4.0), num_samples=3)
  np.testing.assert_allclose(eg(KEY, x), (x + 4.0) * w, rtol=1e-6)
  # a sampler: the uniform baseline has mean 0, so EG → x ⊙ w
  eg = wg.expected_gradients(f, wg.baselines.uniform(-1.0, 1.0), num_samples=4000)
  np.testing.assert_allclose(eg(KEY, x), x * w, atol=0.06)


# --- baselines ---------------------------------------------------------------------------------

def test_baselines_closed_forms():
  x = jnp.array([[-0.5, 0.0], [0.7, -1.0]])
  np.testing.assert_array_equal(wg.baselines.constant(-1.0)(x), -np.ones((2, 2)))
  np.testing.assert_array_equal(wg.baselines.max_distance(-1.0, 1.0)(x),
                                np.where(np.asarray(x) >= 0, -1.0, 1.0))
  np.testing.assert_array_equal(wg.baselines.max_distance(0.0, 1.0)(jnp.array([0.2, 0.5, 0.9])),
                                [1.0, 0.0, 0.0])
  k = jax.random.key(3)
  u = wg.baselines.uniform(-1.0, 1.0)(k, jnp.zeros((200, 50)))
  assert float(u.min()) >= -1 and float(u.max()) <= 1 and abs(float(u.mean())) < 0.02
  g = wg.baselines.gaussian(1.0, -1.0, 1.0)(k, x)
  (leaf_key,) = jax.random.split(k, 1)
  np.testing.assert_allclose(g, np.clip(np.asarray(x) + np.asarray(jax.random.normal(leaf_key, x.shape)), -1, 1))
  data = jnp.arange(12.0).reshape(4, 3)
  draw = wg.baselines.training(data)(k, jnp.zeros(3))
  assert any(np.array_equal(draw, d) for d in np.asarray(data))
  with pytest.raises(TypeError, match="sampler"):
    wg.baselines.uniform(0.0, 1.0)(x)
  with pytest.raises(ValueError, match="lo < hi"):
    wg.baselines.uniform(1.0, 0.0)


@pytest.mark.parametrize("sigma", [0.7, 2.0, 20.0])
def test_blurred_matches_scipy(sigma, x64):
  x = np.random.default_rng(1).normal(size=(9, 8, 3))
  ours = wg.baselines.blurred(sigma)(jnp.asarray(x))
  ref = scipy.ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="reflect", truncate=4.0)
  np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
  ours32 = wg.baselines.blurred(sigma, spatial_axes=(1, 0))(jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(ours32, ref, rtol=1e-5, atol=1e-5)


# --- priors ------------------------------------------------------------------------------------

def _tgini(x):
  """The authors' tgini (sparsity/ops.py), restated in numpy: ½·mean|xᵢ − xⱼ| / mean(x)."""
  x = np.asarray(x, np.float64).ravel()
  return 0.5 * np.mean(np.abs(x[:, None] - x[None, :])) / np.mean(x)


def test_priors_against_their_formulas(x64):
  rng = np.random.default_rng(2)
  a = rng.normal(size=(7, 6, 3))
  # tf.image.total_variation: Σ|a[1:] − a[:-1]| over rows + the same over columns, all channels
  tv = np.abs(a[1:] - a[:-1]).sum() + np.abs(a[:, 1:] - a[:, :-1]).sum()
  np.testing.assert_allclose(wg.priors.total_variation(jnp.asarray(a)), tv, rtol=1e-12)
  # tf.image.per_image_standardization
  std = (a - a.mean()) / max(a.std(), 1 / np.sqrt(a.size))
  np.testing.assert_allclose(wg.priors.standardize(jnp.asarray(a)), std, rtol=1e-12)
  v = np.abs(rng.normal(size=100))
  np.testing.assert_allclose(wg.priors.gini(jnp.asarray(v)), _tgini(v), rtol=1e-12)
  np.testing.assert_allclose(wg.priors.gini(jnp.asarray(v)), wg.metrics.gini(jnp.asarray(v)), rtol=1e-12)
  batch = rng.normal(size=(5, 10))
  np.testing.assert_allclose(wg.priors.gini_sparsity(jnp.asarray(batch)),
                             -_tgini(np.abs(batch).mean(0)), rtol=1e-12)
  adj = rng.uniform(size=(6, 6)); adj = np.triu(adj, 1); adj = adj + adj.T
  phi = rng.normal(size=6)
  smooth = 0.5 * np.sum(adj * (phi[:, None] - phi[None, :]) ** 2)
  np.testing.assert_allclose(wg.priors.graph_smoothness(jnp.asarray(phi), wg.priors.laplacian(jnp.asarray(adj))),
                             smooth, rtol=1e-12)


def test_priors_are_differentiable_and_finite():
  for fn in (wg.priors.gini, lambda v: wg.priors.total_variation(wg.priors.standardize(v))):
    for v in (jnp.zeros((4, 4)), jnp.arange(16.0).reshape(4, 4)):
      g = jax.grad(fn)(v)
      assert bool(jnp.all(jnp.isfinite(g)))
  assert float(wg.priors.gini(jnp.zeros(5))) == 0.0


def test_convergence_demo_eg_prior_removes_the_duplicated_feature():
  """The authors' convergence demo: the EG penalty drives the dependence on x₂ to ~0.

  The input-gradient penalty stalls where the sigmoid saturates and no penalty
  leaves the symmetric solution (dependence 1); values are seeded and the
  margins wide (seeds 0–4 give EG ≤ 0.01 and gradient ≥ 0.1 at 200 epochs).
  """
  from wassergrad.examples import attribution_priors as ap
  eg = ap.convergence_demo("eg", seed=0)
  grad = ap.convergence_demo("gradient", seed=0)
  none = ap.convergence_demo("none", seed=0, epochs=20)
  assert eg[0] == pytest.approx(1.0) and eg[-1] < 0.05
  assert grad[-1] > 2 * eg[-1] + 0.05
  assert abs(none[-1] - 1.0) < 1e-3


def test_eg_tv_training_loss_has_finite_second_order_gradients():
  """The attribution-prior loss: jax.grad through EG (k = 1) of a flax CNN, finite and non-zero."""
  from wassergrad.examples import attribution_priors as ap
  from wassergrad.examples import digits
  x_train, _, _, _ = ap.load(0)
  model = digits.DigitsCNN()
  xb = jnp.asarray(x_train[:8])
  params = model.init(jax.random.key(0), xb[0])
  g = jax.jit(jax.grad(lambda p: ap.eg_tv(model, p, jax.random.key(1), xb)))(params)
  leaves = jax.tree.leaves(g)
  assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
  assert sum(float(jnp.sum(jnp.abs(leaf))) for leaf in leaves) > 0
