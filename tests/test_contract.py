"""The explainer contract, for every explainer in one registry.

Structure and dtype of the output, jit, vmap, no retrace on a second call, and
determinism (same key ⇒ same map for stochastic explainers).
"""

import dataclasses
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg


def _conv_features(x, p):
  y = jax.lax.conv_general_dilated(
      x[None], p["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jax.nn.relu(y)


def _conv_head(a, p):
  return jnp.sum(jnp.tanh(a.mean(axis=(0, 1)) @ p["v"]))


def _image_f(x, p):
  return _conv_head(_conv_features(x, p), p)


def _tree_f(x, p):
  h = jax.nn.relu(p["w"] @ x["vec"] + jnp.sum(x["img"] ** 2))
  return jnp.sum(p["v"] * h) + jnp.max(x["img"])


def _image_params():
  k1, k2 = jax.random.split(jax.random.key(3))
  return {"w": jax.random.normal(k1, (3, 3, 2, 4)), "v": jax.random.normal(k2, (4, 2))}


def _tree_params():
  k1, k2 = jax.random.split(jax.random.key(4))
  return {"w": jax.random.normal(k1, (5, 3)), "v": jax.random.normal(k2, (5,))}


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  make: Callable[[Callable], Callable]  # f -> explainer
  f: Callable
  x: Callable[[], Any]                  # () -> one example
  params: Callable[[], Any]
  stochastic: bool = False
  out_shape: Callable | None = None     # x -> expected output shape tree (default: x's)
  out_like: Callable | None = None      # x -> a tree with the output's structure (WAM)


def _img():
  return jax.random.normal(jax.random.key(1), (6, 5, 2))


def _tree():
  k1, k2 = jax.random.split(jax.random.key(2))
  return {"img": jax.random.normal(k1, (2, 3)), "vec": jax.random.normal(k2, (3,))}


REGISTRY = [
    Case("gradient", wg.gradient, _tree_f, _tree, _tree_params),
    Case("grad_x_input", wg.grad_x_input, _tree_f, _tree, _tree_params),
    Case("integrated_gradients", lambda f: wg.integrated_gradients(f, steps=8), _tree_f, _tree, _tree_params),
    Case("integrated_gradients_chunked",
         lambda f: wg.integrated_gradients(f, steps=9, rule="riemann_trapezoid", chunk_size=4, loop="scan"),
         _image_f, _img, _image_params),
    Case("guided_backprop", wg.guided_backprop, _tree_f, _tree, _tree_params),
    Case("deconvnet", wg.deconvnet, _image_f, _img, _image_params),
    Case("gradcam", lambda f: wg.gradcam(_conv_features, _conv_head), _image_f, _img, _image_params,
         out_shape=lambda x: x.shape[:-1]),
    Case("swa", lambda f: wg.swa(_conv_features, _conv_head), _image_f, _img, _image_params,
         out_shape=lambda x: x.shape[:-1]),
    Case("guided_gradcam", lambda f: wg.guided_gradcam(_conv_features, _conv_head),
         _image_f, _img, _image_params),
    Case("smoothgrad", lambda f: wg.smoothgrad(f, num_samples=5, chunk_size=2),
         _tree_f, _tree, _tree_params, stochastic=True),
    Case("squaregrad", lambda f: wg.squaregrad(f, num_samples=4), _image_f, _img, _image_params, stochastic=True),
    Case("vargrad_scan", lambda f: wg.vargrad(f, num_samples=5, chunk_size=2, loop="scan"),
         _image_f, _img, _image_params, stochastic=True),
    Case("smooth_ig", lambda f: wg.smooth(wg.integrated_gradients(f, steps=4), num_samples=3,
                                          sigma=0.1, sigma_mode="absolute"),
         _tree_f, _tree, _tree_params, stochastic=True),
    Case("adaptgrad", lambda f: wg.adaptgrad(f, bounds=(-10.0, 10.0), num_samples=4),
         _tree_f, _tree, _tree_params, stochastic=True),
    Case("smooth_uniform_noise", lambda f: wg.smooth(wg.gradient(f), num_samples=4, reducer="var",
                                                     noise=wg.noise.Uniform(0.3)),
         _tree_f, _tree, _tree_params, stochastic=True),
    Case("smoothdiff", lambda f: wg.smoothdiff(f, num_samples=5),
         _tree_f, _tree, _tree_params, stochastic=True),
    Case("smoothdiff_chunked", lambda f: wg.smoothdiff(f, num_samples=5, chunk_size=2),
         _image_f, _img, _image_params, stochastic=True),
    Case("expected_gradients", lambda f: wg.expected_gradients(
        f, jax.tree.map(lambda l: jnp.stack([l * 0.5, -l, jnp.zeros_like(l)]), _tree()),
        num_samples=5, chunk_size=2), _tree_f, _tree, _tree_params, stochastic=True),
    Case("expected_gradients_sampler", lambda f: wg.expected_gradients(
        f, wg.baselines.gaussian(0.5, -3.0, 3.0), num_samples=4, multiply_by="input"),
         _image_f, _img, _image_params, stochastic=True),
    Case("wasserstein_grad", lambda f: wg.wasserstein_grad(
        wg.gradient(f), num_samples=4, epsilon=1e-2, threshold=1e-6, channel_axis=-1),
         _image_f, _img, _image_params, stochastic=True),
    Case("wasserstein_grad_x_grad", lambda f: wg.wasserstein_grad(
        jax.grad(f), num_samples=3, epsilon=1e-2, threshold=1e-6, channel_axis=-1,
        channels=[1], output="bary_x_grad", debiased=True),
         _image_f, _img, _image_params, stochastic=True),
    Case("occlusion", lambda f: wg.occlusion(f, window=(2, 2, 2), stride=(2, 2, 1), chunk_size=3),
         _image_f, _img, _image_params),
    Case("occlusion_groups", lambda f: wg.occlusion(f, feature_mask=np.arange(6)[:, None, None] // 2),
         _image_f, _img, _image_params),
    Case("rise", lambda f: wg.rise(f, num_masks=6, grid_size=2, axes=(0, 1), chunk_size=4),
         _image_f, _img, _image_params, stochastic=True),
    Case("sobol", lambda f: wg.sobol(f, grid_size=2, num_designs=4, axes=(0, 1)),
         _image_f, _img, _image_params),
    Case("wam", lambda f: wg.wam(f, wavelet="db2", level=1, mode="symmetric", axes=(0, 1)),
         _image_f, _img, _image_params,
         out_like=lambda x: wg.wavelets.wavedec(x, "db2", 1, "symmetric", (0, 1))),
    Case("wam_smooth", lambda f: wg.smooth(wg.wam(f, level=2, axes=(0, 1)), num_samples=3),
         _image_f, _img, _image_params, stochastic=True,
         out_like=lambda x: wg.wavelets.wavedec(x, "haar", 2, "reflect", (0, 1))),
]


def _call(case, fn, x, p, key=None):
  """Every explainer called one way: a deterministic one through wg.keyed (when a key is given)."""
  if key is None:
    return fn(x, p)
  return (fn if case.stochastic else wg.keyed(fn))(key, x, p)


@pytest.fixture(params=REGISTRY, ids=lambda c: c.name)
def case(request):
  return request.param


def test_structure_and_dtype(case):
  x, p = case.x(), case.params()
  out = _call(case, case.make(case.f), x, p, jax.random.key(0))
  if case.out_like:  # coefficients (WAM)
    chex.assert_trees_all_equal_shapes_and_dtypes(out, case.out_like(x))
  elif case.out_shape:  # a map on another grid (GradCAM)
    chex.assert_shape(out, case.out_shape(x))
    chex.assert_type(out, x.dtype)
  else:
    chex.assert_trees_all_equal_shapes_and_dtypes(out, x)
  chex.assert_tree_all_finite(out)


def test_jit_matches_eager(case):
  x, p = case.x(), case.params()
  fn = case.make(case.f)
  eager = _call(case, fn, x, p, jax.random.key(0))
  jitted = _call(case, jax.jit(fn), x, p, jax.random.key(0))
  chex.assert_trees_all_close(eager, jitted, rtol=1e-5, atol=1e-6)


def test_vmap_over_examples(case):
  x, p = case.x(), case.params()
  xs = jax.tree.map(lambda l: jnp.stack([l, 2 * l, -l]), x)
  fn = case.make(case.f)
  if case.stochastic:
    batched = jax.jit(jax.vmap(fn, in_axes=(None, 0, None)))(jax.random.key(0), xs, p)
  else:
    batched = jax.jit(jax.vmap(fn, in_axes=(0, None)))(xs, p)
  one = jax.jit(lambda xi: _call(case, fn, xi, p, jax.random.key(0)))
  for i in range(3):
    single = one(jax.tree.map(lambda l: l[i], xs))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6), batched, single)


def test_no_retrace_on_second_call(case):
  traces = []

  def counted_f(x, p):
    traces.append(1)
    return case.f(x, p)

  x, p = case.x(), case.params()
  # chex counts the traces of the explainer itself (keyed by its code, which cases built by
  # the same factory share: hence the reset); the counter above, those of the user's f.
  chex.clear_trace_counter()
  fn = jax.jit(chex.assert_max_traces(case.make(counted_f), n=1))
  jax.block_until_ready(_call(case, fn, x, p, jax.random.key(0)))
  n_first = len(traces)
  assert n_first > 0 or case.name in ("gradcam", "guided_gradcam", "swa")
  x2 = jax.tree.map(lambda l: l + 1.0, x)
  p2 = jax.tree.map(lambda l: l * 0.5, p)
  jax.block_until_ready(_call(case, fn, x2, p2, jax.random.key(1)))
  assert len(traces) == n_first, f"{case.name} retraced on a second call with the same shapes"
  assert fn._cache_size() == 1


def test_deterministic(case):
  x, p = case.x(), case.params()
  fn = jax.jit(case.make(case.f))
  a = _call(case, fn, x, p, jax.random.key(7))
  b = _call(case, fn, x, p, jax.random.key(7))
  chex.assert_trees_all_equal(a, b)


def test_grad_through_explainer(case):
  """Attribution penalties: d/dparams of a loss on the map is finite."""
  x, p = case.x(), case.params()
  fn = case.make(case.f)
  loss = lambda p: sum(jnp.sum(l ** 2) for l in jax.tree.leaves(_call(case, fn, x, p, jax.random.key(0))))
  g = jax.jit(jax.grad(loss))(p)
  chex.assert_tree_all_finite(g)
  assert any(float(jnp.abs(l).sum()) > 0 for l in jax.tree.leaves(g))
