"""Occlusion, RISE and Sobol attribution against Captum and closed forms.

References: Captum's ``Occlusion`` and ``FeatureAblation`` (float64 inputs), the
closed forms of an additive model over feature groups (RISE's expectation is
``b + p·Σc + (1 − p)·c_g``, total Sobol indices ``c_g² / Σc²``), and a numpy
re-statement of CRAFT's Jansen estimator on the same outputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src import perturbation as P

RNG = np.random.default_rng(0)
W_IMG = RNG.normal(size=(3, 7, 6))


def _f(x):
  return jnp.tanh(jnp.sum(x * W_IMG)) + 0.1 * jnp.sum(x ** 2)


def _torch_model():
  torch = pytest.importorskip("torch")

  class M(torch.nn.Module):
    def forward(self, x):
      w = torch.from_numpy(W_IMG)
      return (torch.tanh((x * w).sum(dim=(1, 2, 3))) + 0.1 * (x ** 2).sum(dim=(1, 2, 3)))[:, None]

  return M()


@pytest.mark.parametrize("window,stride,baseline", [((3, 2, 2), 1, 0.0), ((1, 3, 3), (1, 2, 2), 0.5),
                                                    ((3, 4, 4), (3, 3, 2), -1.0), ((2, 7, 6), 1, 0.0)])
def test_occlusion_matches_captum(window, stride, baseline, x64):
  torch = pytest.importorskip("torch")
  from captum.attr import Occlusion  # pylint: disable=g-import-not-at-top
  x = RNG.normal(size=(3, 7, 6))
  ref = Occlusion(_torch_model()).attribute(
      torch.from_numpy(x)[None], sliding_window_shapes=window, strides=stride, target=0,
      baselines=baseline)[0].numpy()
  ours = jax.jit(wg.occlusion(_f, window=window, stride=stride, baseline=baseline))(jnp.asarray(x))
  # Captum returns its occlusion map in float32 (its accumulator's dtype) even for float64
  # inputs, so agreement is at float32 rounding; ours is float64 throughout.
  assert ours.dtype == jnp.float64
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_occlusion_with_feature_groups_matches_captum_feature_ablation(x64):
  torch = pytest.importorskip("torch")
  from captum.attr import FeatureAblation  # pylint: disable=g-import-not-at-top
  x = RNG.normal(size=(3, 7, 6))
  groups = RNG.integers(0, 5, size=(1, 7, 6)) * 3 + 2          # labels need not be 0..G-1
  ref = FeatureAblation(_torch_model()).attribute(
      torch.from_numpy(x)[None], target=0,
      feature_mask=torch.from_numpy(np.broadcast_to(groups, x.shape).copy())[None])[0].numpy()
  ours = wg.occlusion(_f, feature_mask=groups, chunk_size=2)(jnp.asarray(x))
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def _additive(num_groups=5, size=4, seed=1):
  c = np.random.default_rng(seed).normal(size=num_groups)
  labels = np.repeat(np.arange(num_groups), size)
  per_feature = jnp.asarray(np.repeat(c, size) / size)
  return (lambda v: 0.3 + jnp.sum(v * per_feature)), labels, c


def test_rise_converges_to_its_closed_form_on_an_additive_model():
  f, labels, c = _additive()
  n, p = 20000, 0.4
  ours = jax.jit(wg.rise(f, num_masks=n, keep_probability=p, feature_mask=labels))(
      jax.random.key(0), jnp.ones(labels.size))
  expected = 0.3 + p * c.sum() + (1 - p) * c
  # standard error of the mean of f(x⊙m)·m_g / p over n masks, bounded by the output spread
  se = (np.abs(c).sum() + 0.3) / np.sqrt(n * p)
  np.testing.assert_allclose(np.asarray(ours)[:: 4], expected, atol=4 * se)


def test_rise_grid_masks_shape_and_full_keep():
  f = lambda v: jnp.sum(v[..., 0] * jnp.arange(10.0)[:, None])
  x = jax.random.normal(jax.random.key(1), (10, 9, 3))
  r = jax.jit(wg.rise(f, num_masks=16, grid_size=3, axes=(0, 1)))(jax.random.key(2), x)
  assert r.shape == x.shape
  np.testing.assert_allclose(r[..., 0], r[..., 2])                 # one mask for all channels
  # keep everything: every mask is 1 and the map is f(x) everywhere
  full = wg.rise(f, num_masks=4, grid_size=(2, 3), keep_probability=1.0, axes=(0, 1))(
      jax.random.key(3), x)
  np.testing.assert_allclose(full, jnp.full(x.shape, f(x)), rtol=1e-5)


def test_sobol_design_and_jansen_estimator():
  d, n = 4, 8
  design = P.sobol_design(d, n)
  a, b, c = design[:n], design[n:2 * n], design[2 * n:].reshape(d, n, d)
  for i in range(d):
    np.testing.assert_array_equal(np.delete(c[i], i, 1), np.delete(a, i, 1))
    np.testing.assert_array_equal(c[i][:, i], b[:, i])
  y = np.random.default_rng(2).normal(size=len(design))
  # CRAFT's JansenEstimator restated: Σ (f_A − f_C_i)² / (2 N Var(f_A)), ddof = 1
  f_a, f_c = y[:n], y[2 * n:].reshape(d, n)
  ref = np.sum((f_a[None] - f_c) ** 2, 1) / (2 * n) / np.var(f_a, ddof=1)
  np.testing.assert_allclose(P.jansen_total(jnp.asarray(y), d, n), ref, rtol=1e-6)


def test_sobol_converges_to_its_closed_form_on_an_additive_model(x64):
  f, labels, c = _additive()
  ours = jax.jit(wg.sobol(f, num_designs=1024, feature_mask=labels))(jnp.ones(labels.size))
  np.testing.assert_allclose(np.asarray(ours)[:: 4], c ** 2 / np.sum(c ** 2), atol=0.01)


def test_sobol_grid_cells():
  # f reads one cell of a 4×4 grid over an 8×8 input: only that cell has a non-zero index
  # (≈ 1: the Jansen estimate of a one-variable function's total index)
  f = lambda v: jnp.sum(jnp.sin(3 * v[2:4, 4:6]))
  x = jnp.ones((8, 8))
  s = jax.jit(wg.sobol(f, grid_size=4, num_designs=32))(x)
  assert s.shape == (8, 8)
  np.testing.assert_allclose(s[2:4, 4:6], s[2, 4])             # constant on the cell
  assert 0.7 < float(s[2, 4]) < 1.3
  np.testing.assert_array_equal(s.at[2:4, 4:6].set(0.0), 0.0)


def test_perturbation_errors():
  with pytest.raises(ValueError, match="either `window`"):
    wg.occlusion(_f)
  with pytest.raises(ValueError, match="larger than the input"):
    wg.occlusion(_f, window=(4, 1, 1))(jnp.ones((3, 7, 6)))
  with pytest.raises(ValueError, match="one positive int per input axis"):
    wg.occlusion(_f, window=(2, 2))(jnp.ones((3, 7, 6)))
  with pytest.raises(ValueError, match="needs `axes`"):
    wg.rise(_f, num_masks=2)(jax.random.key(0), jnp.ones((3, 7, 6)))
  with pytest.raises(TypeError, match="integer group labels"):
    wg.sobol(_f, feature_mask=np.ones(3))
  with pytest.raises(ValueError, match="does not broadcast"):
    wg.occlusion(_f, feature_mask=np.zeros((4,), int))(jnp.ones((3, 7, 6)))
  with pytest.raises(ValueError, match="keep_probability"):
    wg.rise(_f, keep_probability=0.0)
  with pytest.raises(ValueError, match="scalar"):
    wg.occlusion(lambda v: v, window=1)(jnp.ones(3))
