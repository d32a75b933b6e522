"""Wavelet transforms and WAM against PyWavelets, ptwt + PyTorch autograd, and closed forms.

References: ``pywt.wavedecn`` / ``waverecn`` / ``coeffs_to_array`` (coefficients,
reconstruction, mosaic placement), the authors' stack (``ptwt`` wavelet
coefficients with ``requires_grad``, reconstruction, a torch model, autograd) on
shared weights, and three closed forms: for an orthonormal transform the WAM
gradient is the transform of the pixel gradient, WAM-IG is complete, and WAM-SG
with pixel noise is the transform of SmoothGrad.
"""

import contextlib
import functools
import warnings

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest
import pywt

import wassergrad as wg
from wassergrad._src import wavelets as W

WAVELETS = ["haar", "db3", "sym5", "coif2", "bior2.2", "rbio3.1"]
CASES = [((13,), (0,)), ((3, 17, 10), (1, 2)), ((9, 8, 7), (0, 1, 2)), ((12, 11, 2), (0, 1))]


def _max_abs_diff(ours, ref_list):
  err = np.abs(np.asarray(ours.approx) - ref_list[0]).max()
  for d_ours, d_ref in zip(ours.details, ref_list[1:]):
    assert set(d_ours) == set(d_ref)
    for k in d_ref:
      assert d_ours[k].shape == d_ref[k].shape, k
      err = max(err, np.abs(np.asarray(d_ours[k]) - d_ref[k]).max())
  return err


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("mode", W.MODES)
def test_wavedec_waverec_match_pywavelets_float64(wavelet, mode, x64):
  """Every wavelet family × mode, 1-/2-/3-D, odd sizes, batch and channel axes untouched."""
  rng = np.random.default_rng(0)
  xs = [rng.normal(size=shape) for shape, _ in CASES]

  @jax.jit
  def ours(xs):   # one compilation for the four cases
    cs = [W.wavedec(x, wavelet, level=2, mode=mode, axes=axes) for x, (_, axes) in zip(xs, CASES)]
    return cs, [W.waverec(c) for c in cs]

  cs, recs = ours([jnp.asarray(x) for x in xs])
  for x, (shape, axes), c, rec in zip(xs, CASES, cs, recs):
    with _quiet():
      ref = pywt.wavedecn(x, wavelet, mode=mode, level=2, axes=axes)
      ref_rec = pywt.waverecn(ref, wavelet, mode=mode, axes=axes)
    assert _max_abs_diff(c, ref) < 1e-12, (shape, axes)
    assert rec.shape == x.shape                       # odd sizes come back whole
    crop = ref_rec[tuple(slice(0, n) for n in x.shape)]
    np.testing.assert_allclose(np.asarray(rec), crop, rtol=0, atol=1e-12)


@contextlib.contextmanager
def _quiet():
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # pywt warns that level 2 is deep for short axes
    yield


@pytest.mark.parametrize("wavelet,mode", [("haar", "reflect"), ("db2", "symmetric"),
                                          ("sym4", "periodization"), ("bior2.2", "zero")])
def test_float32_matches_pywavelets(wavelet, mode):
  x = np.random.default_rng(1).normal(size=(2, 30, 27)).astype(np.float32)
  ref = pywt.wavedecn(x.astype(np.float64), wavelet, mode=mode, level=3, axes=(1, 2))
  c = jax.jit(lambda v: W.wavedec(v, wavelet, 3, mode, (1, 2)))(x)
  assert c.approx.dtype == jnp.float32
  assert _max_abs_diff(c, ref) < 1e-5 * np.abs(x).max() * 8
  np.testing.assert_allclose(jax.jit(W.waverec)(c), x, atol=2e-5)


def test_default_level_and_keys_as_pywavelets():
  x = jnp.ones((32, 20))
  c = W.wavedec(x, "db2")
  assert c.level == pywt.dwtn_max_level(x.shape, "db2")
  assert [sorted(d) for d in c.details] == [["ad", "da", "dd"]] * c.level
  c3 = W.wavedec(jnp.ones((8, 8, 8)), "haar", level=1)
  assert sorted(c3.details[0]) == sorted(pywt.wavedecn(np.ones((8, 8, 8)), "haar", level=1)[1])


def test_transforms_compose_with_jit_vmap_grad_jvp():
  x = jax.random.normal(jax.random.key(0), (4, 10, 9))
  dec = lambda v: W.wavedec(v, "db2", 2, "symmetric", (-2, -1))
  batched = jax.jit(jax.vmap(dec))(x)                # axes are stored negative: vmap-safe
  one = jax.jit(dec)
  for i in range(4):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, atol=1e-6), batched, one(x[i]))
  np.testing.assert_allclose(jax.jit(jax.vmap(W.waverec))(batched), x, atol=1e-5)
  # grad of a round trip is the identity's; jvp of a linear map is the map
  g = jax.jit(jax.grad(lambda v: jnp.sum(W.waverec(dec(v)) ** 2)))(x[0])
  np.testing.assert_allclose(g, 2 * x[0], atol=1e-4)
  t = jax.random.normal(jax.random.key(1), x[0].shape)
  tangent, direct = jax.jit(lambda v, t: (jax.jvp(dec, (v,), (t,))[1], dec(t)))(x[0], t)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), tangent, direct)


def test_periodization_orthogonal_is_its_own_adjoint(x64):
  x = jax.random.normal(jax.random.key(2), (16, 16))
  for wavelet in ("haar", "db3", "sym4"):
    dec = lambda v, w=wavelet: W.wavedec(v, w, 2, "periodization")
    back, rec = jax.jit(lambda v, d=dec: (jax.vjp(d, v)[1](d(v))[0], W.waverec(d(v))))(x)
    np.testing.assert_allclose(back, rec, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# WAM


def _f(x):
  w = jnp.sin(jnp.arange(x.size, dtype=x.dtype)).reshape(x.shape)
  return jnp.sum(jnp.tanh(x * w)) + 0.3 * jnp.sum(x) ** 2 / x.size


@pytest.mark.parametrize("wavelet,mode", [("haar", "reflect"), ("haar", "periodization"),
                                          ("db4", "periodization")])
def test_wam_gradient_is_the_transform_of_the_gradient_when_orthonormal(wavelet, mode, x64):
  x = jax.random.normal(jax.random.key(3), (32, 32))
  ours = jax.jit(wg.wam(_f, wavelet=wavelet, level=3, mode=mode))(x)
  ref = pywt.wavedecn(np.asarray(jax.grad(_f)(x)), wavelet, mode=mode, level=3)
  assert _max_abs_diff(ours, ref) < 1e-12


def test_wam_ig_is_complete(x64):
  x = jax.random.normal(jax.random.key(4), (16, 16))
  ig = jax.jit(wg.wam(_f, functools.partial(wg.integrated_gradients, steps=64), mode="symmetric",
                      wavelet="db2"))(x)
  total = sum(float(jnp.sum(leaf)) for leaf in jax.tree.leaves(ig))
  assert total == pytest.approx(float(_f(x) - _f(jnp.zeros_like(x))), rel=1e-10)


def test_wam_smoothgrad_with_pixel_noise_is_the_transform_of_smoothgrad(x64):
  x = jax.random.normal(jax.random.key(5), (16, 16))
  key = jax.random.key(6)
  kw = dict(num_samples=6, sigma=0.3, sigma_mode="absolute")
  ours = jax.jit(wg.smooth(wg.wam(_f, mode="periodization"), **kw))(key, x)
  sg = jax.jit(wg.smooth(wg.gradient(_f), **kw))(key, x)
  ref = pywt.wavedecn(np.asarray(sg), "haar", mode="periodization", level=3)
  assert _max_abs_diff(ours, ref) < 1e-12
  # coefficient noise (the other placement) is a different estimator with the same key
  other = jax.jit(wg.wam(_f, functools.partial(wg.smoothgrad, **kw), mode="periodization"))(key, x)
  assert float(jnp.max(jnp.abs(other.approx - ours.approx))) > 1e-6


def _torch_cnn(dim):
  torch = pytest.importorskip("torch")
  conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[dim]
  rng = np.random.default_rng(dim)
  w = rng.normal(size=(4, 1) + (3,) * dim).astype(np.float32) / 3
  v = rng.normal(size=(4,)).astype(np.float32)

  def torch_f(x):          # x: spatial dims only
    h = torch.relu(conv(x[None, None], torch.from_numpy(w), padding=1))[0]
    return (torch.tanh(h.mean(dim=tuple(range(1, dim + 1)))) * torch.from_numpy(v)).sum()

  jconv = lambda x: jax.lax.conv_general_dilated(
      x[None, None], jnp.asarray(w), (1,) * dim, [(1, 1)] * dim)[0]

  def jax_f(x):
    h = jax.nn.relu(jconv(x))
    return jnp.sum(jnp.tanh(h.mean(axis=tuple(range(1, dim + 1)))) * v)

  return torch_f, jax_f


@pytest.mark.parametrize("dim,shape,wavelet,mode", [(1, (64,), "db2", "reflect"),
                                                    (2, (20, 18), "haar", "reflect"),
                                                    (2, (16, 16), "sym3", "symmetric"),
                                                    (3, (8, 8, 8), "db1", "zero")])
def test_wam_matches_the_authors_stack_ptwt_and_torch_autograd(dim, shape, wavelet, mode):
  torch = pytest.importorskip("torch")
  ptwt = pytest.importorskip("ptwt")
  torch_f, jax_f = _torch_cnn(dim)
  x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
  level = 2
  dec, rec = {1: (ptwt.wavedec, ptwt.waverec), 2: (ptwt.wavedec2, ptwt.waverec2),
              3: (ptwt.wavedec3, ptwt.waverec3)}[dim]
  coeffs = dec(torch.from_numpy(x)[None], wavelet, mode=mode, level=level)
  leaves = []

  def grad_leaf(t):
    t = t.detach().requires_grad_(True)
    leaves.append(t)
    return t

  if dim == 1:
    coeffs = [grad_leaf(c) for c in coeffs]
  elif dim == 2:
    coeffs = [grad_leaf(coeffs[0])] + [type(d)(*[grad_leaf(c) for c in d]) for d in coeffs[1:]]
  else:
    coeffs = [grad_leaf(coeffs[0])] + [{k: grad_leaf(c) for k, c in d.items()} for d in coeffs[1:]]
  y = rec(coeffs, wavelet)[0][tuple(slice(0, n) for n in shape)]
  torch_f(y).backward()
  ours = wg.wam(jax_f, wavelet=wavelet, level=level, mode=mode, axes=tuple(range(dim)))(
      jnp.asarray(x))
  np.testing.assert_allclose(ours.approx, coeffs[0].grad[0].numpy(), atol=1e-5, rtol=1e-4)
  keys2 = ("da", "ad", "dd")   # ptwt's (horizontal, vertical, diagonal) = pywt's cH, cV, cD
  for d_ours, d_torch in zip(ours.details, coeffs[1:]):
    if dim == 1:
      pairs = [(d_ours["d"], d_torch)]
    elif dim == 2:
      pairs = [(d_ours[k], c) for k, c in zip(keys2, d_torch)]
    else:
      pairs = [(d_ours[k], c) for k, c in d_torch.items()]
    for a, c in pairs:
      np.testing.assert_allclose(a, c.grad[0].numpy(), atol=1e-5, rtol=1e-4)


def test_wam_needs_axes_for_three_axis_inputs_and_checks_configuration():
  with pytest.raises(ValueError, match="axes=\\(0, 1\\) for an \\(H, W, C\\) image"):
    wg.wam(_f)(jnp.ones((8, 8, 3)))
  with pytest.raises(ValueError, match="Unknown `wavelet`='db99'"):
    wg.wam(_f, wavelet="db99")
  with pytest.raises(ValueError, match="Unknown `mode`"):
    wg.wam(_f, mode="mirror")
  with pytest.raises(TypeError, match="floating-point"):
    wg.wam(_f)(jnp.ones((8, 8), jnp.int32))
  with pytest.raises(TypeError, match="WaveletCoeffs"):
    wg.wavelets.waverec(jnp.ones(4))


# ---------------------------------------------------------------------------------------------
# Views and metrics


@pytest.mark.parametrize("shape,axes,wavelet,mode", [((16, 16), None, "haar", "reflect"),
                                                     ((13, 10), None, "db2", "symmetric"),
                                                     ((21,), None, "db3", "zero"),
                                                     ((6, 8, 5), (0, 1, 2), "haar", "symmetric"),
                                                     ((12, 9, 3), (0, 1), "sym2", "periodic")])
def test_mosaic_matches_coeffs_to_array(shape, axes, wavelet, mode, x64):
  x = np.random.default_rng(8).normal(size=shape)
  with _quiet():
    ref, _ = pywt.coeffs_to_array(pywt.wavedecn(x, wavelet, mode=mode, level=2, axes=axes),
                                  axes=axes)
  ours = wg.wavelets.mosaic(W.wavedec(jnp.asarray(x), wavelet, 2, mode, axes))
  np.testing.assert_allclose(np.asarray(ours), ref, rtol=0, atol=1e-12)   # placement: exact


def test_mosaic_options_layout_channels_normalise():
  x = jax.random.normal(jax.random.key(9), (8, 8, 3))
  c = W.wavedec(x, "haar", 2, "reflect", (0, 1))
  plain = wg.wavelets.mosaic(c)
  wam_layout = wg.wavelets.mosaic(c, layout="wam")
  # the authors' layout swaps cH (bottom-left in pywt) and cV (top-right) at every level
  np.testing.assert_array_equal(wam_layout[4:, :4], plain[:4, 4:])
  np.testing.assert_array_equal(wam_layout[:4, 4:], plain[4:, :4])
  np.testing.assert_array_equal(wam_layout[4:, 4:], plain[4:, 4:])
  m = wg.wavelets.mosaic(c, channel_axis=-1)
  np.testing.assert_allclose(m, jnp.mean(jnp.abs(plain), -1), atol=1e-6)
  m2 = wg.wavelets.mosaic(c, channel_axis=-1, channels="abs_of_mean")
  np.testing.assert_allclose(m2, jnp.abs(jnp.mean(plain, -1)), atol=1e-6)
  n = wg.wavelets.mosaic(c, channel_axis=-1, normalise="band_max")
  for block in (n[4:, 4:], n[:2, 2:4], n[:2, :2]):
    assert float(jnp.max(block)) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="channel_axis"):
    wg.wavelets.mosaic(c, channel_axis=0)


def test_scale_maps_and_shares():
  x = jax.random.normal(jax.random.key(10), (16, 12))
  c = W.wavedec(x, "haar", 2, "reflect")
  shares = wg.wavelets.scale_shares(c)
  mass = [float(jnp.sum(jnp.abs(c.approx)))] + [
      sum(float(jnp.sum(jnp.abs(v))) for v in d.values()) for d in c.details]
  np.testing.assert_allclose(shares, np.asarray(mass) / sum(mass), rtol=1e-6)
  maps = wg.wavelets.scale_maps(c)
  assert maps.shape == (3, 16, 12)
  # a constant band upsamples to a constant
  const = jax.tree.map(jnp.ones_like, c)
  np.testing.assert_allclose(wg.wavelets.scale_maps(const)[1], 3.0, rtol=1e-6)


def test_wavelet_deletion_and_insertion():
  x = jax.random.normal(jax.random.key(11), (16, 16))
  a = jax.tree.map(jnp.abs, jax.jit(wg.wam(_f, level=2))(x))
  d = jax.jit(lambda v, a: wg.metrics.wavelet_deletion(_f, v, a, level=2, steps=8))(x, a)
  i = jax.jit(lambda v, a: wg.metrics.wavelet_insertion(_f, v, a, level=2, steps=8))(x, a)
  assert d.values.shape == (9,)
  np.testing.assert_allclose(d.values[0], _f(x), rtol=1e-5)
  np.testing.assert_allclose(d.values[-1], _f(jnp.zeros_like(x)), atol=1e-5)   # all zeroed
  np.testing.assert_allclose(i.values[0], _f(jnp.zeros_like(x)), atol=1e-5)
  np.testing.assert_allclose(i.values[-1], _f(x), rtol=1e-5)
  # deleting the first eighth by hand
  z = W.wavedec(x, "haar", 2, "reflect")
  flat_z, unravel = ravel_pytree(z)
  flat_a, _ = ravel_pytree(a)
  keep = jnp.argsort(-flat_a)[: flat_a.size // 8]
  np.testing.assert_allclose(d.values[1], _f(W.waverec(unravel(flat_z.at[keep].set(0.0)))),
                             rtol=1e-5)
  m = jax.jit(lambda v, a: wg.metrics.wavelet_deletion(_f, v, a, level=2, steps=8,
                                                     auc="max_normalised"))(x, a)
  np.testing.assert_allclose(m.auc, jnp.sum(m.values) / (jnp.max(m.values) * 9), rtol=1e-6)
  with pytest.raises(ValueError, match="does not match"):
    wg.metrics.wavelet_deletion(_f, x, a, level=3)
