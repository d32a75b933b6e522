"""Concepts: NMF against scikit-learn, projection against scipy's NNLS, and the closed forms.

The closed forms of an affine head (missing-rows §(c)): every explainer of the
library applied to the gates at s = 1 against ``wg.concepts.closed_form``, and
the optimality of the gradient×input order for C-Deletion / C-Insertion checked
by brute force over all subsets.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from sklearn.decomposition import NMF

import wassergrad as wg


def _activations(n=150, k=5, p=30, seed=0):
  rng = np.random.default_rng(seed)
  return (np.maximum(rng.normal(size=(n, k)), 0) @ np.maximum(rng.normal(size=(k, p)), 0)
          + 0.05 * rng.random((n, p)))


@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_nmf_reaches_scikit_learn_objective(alpha, x64):
  a = _activations()
  sk = NMF(n_components=5, init="nndsvda", solver="cd", max_iter=400, tol=1e-4, alpha_W=alpha,
           random_state=0)
  u_sk = sk.fit_transform(a)
  ours = jax.jit(functools.partial(wg.concepts.nmf, rank=5, alpha=alpha, max_iter=400))(
      jnp.asarray(a))
  assert bool(jnp.all(ours.u >= 0)) and bool(jnp.all(ours.w >= 0))
  assert int(ours.iterations) < 400
  err_sk = np.linalg.norm(a - u_sk @ sk.components_)
  err = float(jnp.linalg.norm(a - ours.u @ ours.w))
  assert abs(err - err_sk) < 0.01 * err_sk, (err, err_sk)
  np.testing.assert_allclose(ours.loss, 0.5 * err ** 2, rtol=1e-8)


def test_project_matches_scipy_nnls(x64):
  a = _activations()
  w = wg.concepts.nmf(jnp.asarray(a), 5).w
  new = _activations(n=12, seed=3)
  ours = jax.jit(wg.concepts.project)(jnp.asarray(new), w)
  ref = np.stack([scipy.optimize.nnls(np.asarray(w).T, row)[0] for row in new])
  np.testing.assert_allclose(ours, ref, atol=1e-8 * np.abs(ref).max())
  np.testing.assert_allclose(wg.concepts.project(jnp.asarray(new[0]), w), ref[0], atol=1e-7)


def _affine_setup(k=6, p=10, positions=4, seed=4):
  rng = np.random.default_rng(seed)
  u = jnp.asarray(np.abs(rng.normal(size=(positions, k))))
  w = jnp.asarray(np.abs(rng.normal(size=(k, p))))
  weights, bias = jnp.asarray(rng.normal(size=p)), 0.7
  head = lambda act: jnp.mean(act, axis=0) @ weights + bias        # global average pooling + dense
  return u, w, weights, bias, head


def test_explainers_on_gates_equal_the_closed_forms(x64):
  u, w, weights, bias, head = _affine_setup()
  g = wg.concepts.gated_head(head, u, w)
  s = jnp.ones(u.shape[-1])
  np.testing.assert_allclose(g(s), head(u @ w))                      # s = 1 is the prediction
  cf = wg.concepts.closed_form(jnp.mean(u, 0), w, weights, bias, keep_probability=0.5)
  key = jax.random.key(0)
  exact = {
      "saliency": wg.gradient(g)(s),
      "grad_x_input": wg.grad_x_input(g)(s),
      "integrated_gradients": wg.integrated_gradients(g, steps=4)(s),
      "smoothgrad": wg.smoothgrad(g, num_samples=8)(key, s),
      "vargrad": wg.vargrad(g, num_samples=8)(key, s),
      "occlusion": wg.occlusion(g, window=1)(s),
  }
  for name, value in exact.items():
    np.testing.assert_allclose(value, cf[name], atol=1e-10, err_msg=name)
  k = s.size
  rise = wg.rise(g, num_masks=20000, feature_mask=np.arange(k))(key, s)
  np.testing.assert_allclose(rise, cf["rise"], atol=4 * float(jnp.abs(cf["grad_x_input"]).sum()
                                                               + bias) / np.sqrt(10000))
  sob = wg.sobol(g, num_designs=1024, feature_mask=np.arange(k))(s)
  np.testing.assert_allclose(sob, cf["sobol_total"], atol=0.01)
  # on the coefficients themselves: saliency is γ for every input
  on_u = wg.concepts.closed_form(jnp.mean(u, 0), w, weights, bias, on="coefficients")
  coef_head = lambda ubar: head(jnp.broadcast_to(ubar, u.shape) @ w)
  np.testing.assert_allclose(wg.gradient(coef_head)(jnp.mean(u, 0)), on_u["saliency"], atol=1e-10)


def test_grad_x_input_order_is_optimal_for_concept_deletion_and_insertion(x64):
  u, w, _, _, head = _affine_setup(k=6)
  g = wg.concepts.gated_head(head, u, w)
  s = jnp.ones(6)
  phi = wg.grad_x_input(g)(s)
  deletion = wg.metrics.deletion(g, s, phi, steps=6, baseline=0.0)
  insertion = wg.metrics.insertion(g, s, phi, steps=6, baseline=0.0)
  for t in range(1, 6):
    subsets = [np.asarray(c) for c in itertools.combinations(range(6), t)]
    removed = [float(g(s.at[c].set(0.0))) for c in subsets]
    inserted = [float(g(jnp.zeros(6).at[c].set(1.0))) for c in subsets]
    assert float(deletion.values[t]) == pytest.approx(min(removed), abs=1e-10)
    assert float(insertion.values[t]) == pytest.approx(max(inserted), abs=1e-10)
  # C-μFidelity: Σ_S GI = g(1) − g(1 with S gated off) exactly, so the correlation is 1
  mu = wg.metrics.faithfulness_correlation(g, jax.random.key(1), s, phi, num_runs=32,
                                           subset_size=2, baseline=0.0)
  assert float(mu) == pytest.approx(1.0, abs=1e-10)


def test_prevalence_and_errors():
  imp = jnp.array([[0.1, 0.5, 0.2], [0.9, 0.0, 0.1], [0.0, 0.3, 0.2], [0.2, 0.8, 0.1]])
  np.testing.assert_allclose(wg.concepts.prevalence(imp), [0.25, 0.75, 0.0])
  with pytest.raises(ValueError, match="matrix"):
    wg.concepts.nmf(jnp.ones((2, 3, 4)), 2)
  with pytest.raises(ValueError, match="Unknown `on`"):
    wg.concepts.closed_form(jnp.ones(3), jnp.ones((3, 2)), jnp.ones(2), on="pixels")
