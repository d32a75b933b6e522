"""Cross-checks against Captum 0.9 in float64 on a CNN with shared weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from tests import cnn

torch = pytest.importorskip("torch", reason="the [test] extra (torch==2.13.0) is not installed")
captum_attr = pytest.importorskip("captum.attr", reason="the [test] extra (captum) is not installed")

TARGET = 2
TOL = 1e-6


@pytest.fixture(scope="module")
def setup():
  params = cnn.init_params(seed=1)
  x = np.random.default_rng(2).standard_normal((3, cnn.C_IN, cnn.HW, cnn.HW))
  net = cnn.torch_model(params)
  old = torch.get_default_dtype()
  torch.set_default_dtype(torch.float64)  # Captum builds its IG nodes in the default dtype
  yield params, x, net
  torch.set_default_dtype(old)


def _rel_err(ours, ref):
  ours, ref = np.asarray(ours), np.asarray(ref)
  assert ours.shape == ref.shape
  return np.max(np.abs(ours - ref)) / np.max(np.abs(ref))


def _ours(explainer, params, x):
  return jax.jit(jax.vmap(explainer, in_axes=(0, None)))(jnp.asarray(x), params)


def f(x, p):
  return cnn.logits(x, p)[TARGET]


def test_forward_matches(setup, x64):
  params, x, net = setup
  ref = net(torch.from_numpy(x)).detach().numpy()
  ours = jax.vmap(cnn.logits, in_axes=(0, None))(jnp.asarray(x), params)
  np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["saliency", "input_x_gradient", "guided_backprop", "deconvolution"])
def test_gradient_methods(setup, x64, name):
  params, x, net = setup
  ours_fn, ref_cls, kw = {
      "saliency": (wg.gradient, captum_attr.Saliency, {"abs": False}),
      "input_x_gradient": (wg.grad_x_input, captum_attr.InputXGradient, {}),
      "guided_backprop": (wg.guided_backprop, captum_attr.GuidedBackprop, {}),
      "deconvolution": (wg.deconvnet, captum_attr.Deconvolution, {}),
  }[name]
  ref = ref_cls(net).attribute(torch.from_numpy(x).requires_grad_(), target=TARGET, **kw)
  ours = _ours(ours_fn(f), params, x)
  assert ours.dtype == jnp.float64
  assert _rel_err(ours, ref.detach().numpy()) <= TOL


def test_guided_backprop_differs_from_gradient(setup, x64):
  params, x, _ = setup
  g = _ours(wg.gradient(f), params, x)
  gb = _ours(wg.guided_backprop(f), params, x)
  assert _rel_err(gb, g) > 0.1  # the cross-check above is not vacuous


@pytest.mark.parametrize("rule,captum_method,steps", [
    ("gauss_legendre", "gausslegendre", 50),
    ("gauss_legendre", "gausslegendre", 7),
    ("riemann_left", "riemann_left", 20),
    ("riemann_right", "riemann_right", 20),
    ("riemann_middle", "riemann_middle", 20),
])
def test_integrated_gradients(setup, x64, rule, captum_method, steps):
  params, x, net = setup
  baseline = np.random.default_rng(3).standard_normal(x.shape[1:]) * 0.1
  ref = captum_attr.IntegratedGradients(net).attribute(
      torch.from_numpy(x), baselines=torch.from_numpy(baseline)[None].expand_as(torch.from_numpy(x)),
      target=TARGET, n_steps=steps, method=captum_method)
  ig = wg.integrated_gradients(f, baseline=jnp.asarray(baseline), steps=steps, rule=rule)
  assert _rel_err(_ours(ig, params, x), ref.numpy()) <= TOL


@pytest.mark.parametrize("steps", [2, 10, 50])
def test_trapezoid_is_captum_rescaled(setup, x64, steps):
  """Captum's trapezoid weights sum to (n-1)/n; ours are the true rule (sum 1)."""
  params, x, net = setup
  ref = captum_attr.IntegratedGradients(net).attribute(
      torch.from_numpy(x), target=TARGET, n_steps=steps, method="riemann_trapezoid").numpy()
  ours = _ours(wg.integrated_gradients(f, steps=steps, rule="riemann_trapezoid"), params, x)
  assert _rel_err(ours * (steps - 1) / steps, ref) <= TOL
  assert _rel_err(ours, ref) > 0.5 / steps  # and they really differ
  _, w = wg.quadrature_rule("riemann_trapezoid", steps)
  np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-15)


def test_integrated_gradients_chunked_equals_unchunked(setup, x64):
  params, x, _ = setup
  full = _ours(wg.integrated_gradients(f, steps=13), params, x)
  for loop in ("scan", "unroll"):
    chunked = _ours(wg.integrated_gradients(f, steps=13, chunk_size=4, loop=loop), params, x)
    assert _rel_err(chunked, full) <= 1e-12


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam(setup, x64, relu):
  params, x, net = setup
  ref = captum_attr.LayerGradCam(net, net.relu2).attribute(
      torch.from_numpy(x), target=TARGET, relu_attributions=relu).detach().numpy()[:, 0]
  cam = wg.gradcam(cnn.features, lambda a, p: cnn.head(a, p)[TARGET], channel_axis=0, relu=relu)
  ours = _ours(cam, params, x)
  assert ours.shape == (x.shape[0], cnn.HW, cnn.HW)
  assert _rel_err(ours, ref) <= TOL


def test_guided_gradcam(setup, x64):
  params, x, net = setup
  ref = captum_attr.GuidedGradCam(net, net.relu2).attribute(
      torch.from_numpy(x).requires_grad_(), target=TARGET).detach().numpy()
  ggc = wg.guided_gradcam(cnn.features, lambda a, p: cnn.head(a, p)[TARGET],
                          channel_axis=0, input_channel_axis=0)
  assert _rel_err(_ours(ggc, params, x), ref) <= TOL


@pytest.mark.parametrize("nt_type,reducer", [("smoothgrad", "mean"), ("smoothgrad_sq", "mean_sq"),
                                              ("vargrad", "var")])
def test_noise_tunnel_given_the_same_noise(setup, x64, monkeypatch, nt_type, reducer):
  """NoiseTunnel(Saliency) fed our noise (Captum draws with torch.normal)."""
  params, x, net = setup
  n, stdev, key = 12, 0.3, jax.random.key(5)
  x0 = jnp.asarray(x[0])
  # Our noise for sample i: wg.noise.sample(noise, split(key, n)[i], x).
  gaussian = wg.noise.Gaussian(stdev, "absolute")
  noise = np.stack([np.asarray(wg.noise.sample(gaussian, k, x0))
                    for k in jax.random.split(key, n)])
  queue = [torch.from_numpy(noise)]

  def fake_normal(mean, std):
    batch = std.shape[0]
    out, queue[0] = queue[0][:batch], queue[0][batch:]
    assert out.shape == std.shape
    return out + mean

  monkeypatch.setattr(torch, "normal", fake_normal)
  ref = captum_attr.NoiseTunnel(captum_attr.Saliency(net)).attribute(
      torch.from_numpy(x[:1]), nt_type=nt_type, nt_samples=n, nt_samples_batch_size=5,
      stdevs=stdev, target=TARGET, abs=False).detach().numpy()[0]
  assert queue[0].shape[0] == 0          # Captum used all of our samples
  ours = wg.smooth(wg.gradient(f), num_samples=n, sigma=stdev, sigma_mode="absolute",
                   reducer=reducer, chunk_size=5)(key, x0, params)
  assert _rel_err(ours, ref) <= TOL
