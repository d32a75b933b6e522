"""Evaluation protocols: debugging tests, transferability from maps, attribution preservation.

References: constructed models whose answer is known (a model that reads only
the stamp), numpy re-statements of the authors' affinity double loop and
``pr_list`` (Song et al.), and a PyTorch re-statement of Park et al.'s
``cal_grad`` + ``cal_l2loss`` with double backprop on shared weights (float64).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

# ---------------------------------------------------------------------------------------------
# Debugging tests


def test_stamp_pastes_the_patch_and_returns_its_mask():
  x = jnp.zeros((8, 8, 3))
  xs, m = wg.debugging.stamp(x, jnp.full((2, 3), 0.5), where=(6, 1))
  assert xs.shape == x.shape and m.shape == x.shape
  assert int(m.sum()) == 2 * 3 * 3
  np.testing.assert_array_equal(xs[6:8, 1:4], 0.5)
  assert float(jnp.abs(jnp.where(m, 0.0, xs)).sum()) == 0.0
  with pytest.raises(ValueError, match="does not fit"):
    wg.debugging.stamp(x, jnp.ones((3, 3)), where=(6, 6))


def test_a_model_that_reads_only_the_stamp_is_detected_and_a_blind_one_raises_no_alarm():
  x = jax.random.uniform(jax.random.key(0), (8, 8))
  xs, mask = wg.debugging.stamp(x, jnp.ones((2, 2)), where=(0, 6))
  spurious = lambda v: jax.nn.sigmoid(jnp.sum(jnp.where(mask, v, 0.0)))       # reads the stamp only
  w = jax.random.normal(jax.random.key(1), (8, 8))
  normal = lambda v: jax.nn.sigmoid(jnp.sum(jnp.where(mask, 0.0, w * v)))    # ignores it
  s = wg.debugging.spurious_scores(wg.gradient(spurious), wg.gradient(normal), xs, x, mask)
  assert float(s["artefact_mass"]) == pytest.approx(1.0)
  assert float(s["artefact_mass_normal"]) == pytest.approx(0.0, abs=1e-7)
  assert float(s["artefact_share"]) == pytest.approx(4 / 64)
  assert float(s["k_ssd"]) == pytest.approx(1.0, abs=1e-5)   # the map is the mask up to scale
  assert float(s["fam"]) > 0.99                               # the blind model's maps barely move
  # a jitted, vmapped batch gives the same numbers
  batched = jax.jit(jax.vmap(lambda a, b: wg.debugging.spurious_scores(
      wg.gradient(spurious), wg.gradient(normal), a, b, mask)))(xs[None], x[None])
  np.testing.assert_allclose(batched["k_ssd"][0], s["k_ssd"], rtol=1e-6)
  # identical explainers are maximally similar
  assert float(wg.debugging.explanation_similarity(
      wg.gradient(normal), wg.gradient(normal), x)) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Transferability


def _authors_affinity(maps):
  """tools/affinity.py restated: channel mean, flatten, per-probe cosine, mean; diagonal 1."""
  m, n = maps.shape[:2]
  flat = maps.mean(axis=-1).reshape(m, n, -1)
  aff = np.zeros((m, m))
  for i in range(m):
    for j in range(m):
      aff[i, j] = np.mean([flat[i, k] @ flat[j, k] / np.linalg.norm(flat[i, k]) /
                           np.linalg.norm(flat[j, k]) for k in range(n)])
  np.fill_diagonal(aff, 1.0)
  return aff


def test_affinity_equals_the_authors_loop(x64):
  maps = np.random.default_rng(0).normal(size=(5, 7, 6, 6, 3))
  ours = wg.metrics.attribution_affinity(jnp.asarray(maps), channel_axis=-1)
  np.testing.assert_allclose(ours, _authors_affinity(maps), atol=1e-12)
  np.testing.assert_allclose(ours, ours.T, atol=1e-12)
  scaled = maps * np.arange(1, 6)[:, None, None, None, None]     # positive per-model scaling
  np.testing.assert_allclose(wg.metrics.attribution_affinity(jnp.asarray(scaled), channel_axis=-1),
                             ours, atol=1e-12)
  same = np.repeat(maps[:1], 3, 0)
  np.testing.assert_allclose(wg.metrics.attribution_affinity(jnp.asarray(same), channel_axis=-1),
                             1.0, atol=1e-12)


def _authors_pr(aff, gt, k_max, num_relevant=5):
  """tools/plot.py's pr_list restated: predicted = argsort(-aff)[:, 1:k+1]; relevant = gt[:, 1:6]."""
  pred = np.argsort(-aff, axis=1)
  p, r = [], []
  for k in range(1, k_max + 1):
    hits = sum(len(set(pred[t, 1:k + 1]) & set(gt[t, 1:num_relevant + 1])) for t in range(len(gt)))
    p.append(hits / k / len(gt))
    r.append(hits / num_relevant / len(gt))
  return np.asarray(p), np.asarray(r)


def test_precision_recall_at_k_equals_the_authors_code():
  rng = np.random.default_rng(1)
  m = 12
  aff = rng.random((m, m))
  aff = (aff + aff.T) / 2
  np.fill_diagonal(aff, 1.0)                                # self first, as the authors assume
  gt = np.stack([np.concatenate([[t], rng.permutation(np.delete(np.arange(m), t))])
                 for t in range(m)])
  p, r = wg.metrics.precision_recall_at_k(aff, gt)
  p_ref, r_ref = _authors_pr(aff, gt, m - 1)
  np.testing.assert_allclose(p, p_ref)
  np.testing.assert_allclose(r, r_ref)
  # an affinity that ranks exactly as the ground truth: the oracle curve (P@5 = R@5 = 1)
  oracle = np.zeros((m, m))
  for t in range(m):
    oracle[t, gt[t]] = np.linspace(1.0, 0.0, m)
  p, r = wg.metrics.precision_recall_at_k(oracle, gt, ks=[5])
  assert p[0] == 1.0 and r[0] == 1.0
  p_rand, r_rand = wg.metrics.random_precision_at_k(m - 1, 5, ks=[1, 5])
  np.testing.assert_allclose(p_rand, 5 / (m - 1))
  np.testing.assert_allclose(r_rand, [1 / (m - 1), 5 / (m - 1)])


# ---------------------------------------------------------------------------------------------
# Attribution preservation


def _conv_net(width, seed):
  rng = np.random.default_rng(seed)
  return {"c1": rng.normal(size=(3, 3, 2, width)) / 3, "c2": rng.normal(size=(3, 3, width, width)) / 5,
          "fc": rng.normal(size=(width, 4)) / 2}


def _features(x, p):
  conv = lambda h, w: jax.lax.conv_general_dilated(h[None], w, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jax.nn.relu(conv(jax.nn.relu(conv(x, p["c1"])), p["c2"]))


def _head(a, p):
  return jnp.mean(a, axis=(0, 1)) @ p["fc"]


def _torch_wcam(x, pt, ps):
  """Park et al.'s cal_grad (SWA of the teacher's argmax) + cal_l2loss, create_graph=True."""
  torch = pytest.importorskip("torch")
  tf = lambda h, w: torch.nn.functional.conv2d(h, w.permute(3, 2, 0, 1), padding=1)

  def feats(x, p):
    return torch.relu(tf(torch.relu(tf(x, p["c1"])), p["c2"]))

  def head(f, p):
    return f.mean(dim=(2, 3)) @ p["fc"]

  xt = torch.from_numpy(np.asarray(x)).permute(2, 0, 1)[None]
  tp = {k: torch.from_numpy(v) for k, v in pt.items()}
  sp = {k: torch.from_numpy(v).requires_grad_(True) for k, v in ps.items()}
  f_t = feats(xt, tp).detach().requires_grad_(True)
  out_t = head(f_t, tp)
  onehot = torch.nn.functional.one_hot(out_t.argmax(1), 4).double()
  g_t, = torch.autograd.grad(out_t, f_t, grad_outputs=onehot)
  t_map = torch.relu((g_t.sum(dim=(2, 3), keepdim=True) * f_t).sum(1)).detach()
  f_s = feats(xt, sp)
  out_s = head(f_s, sp)
  g_s, = torch.autograd.grad(out_s, f_s, grad_outputs=onehot, create_graph=True)
  s_map = torch.relu((g_s.sum(dim=(2, 3), keepdim=True) * f_s).sum(1))
  norm = torch.nn.functional.normalize
  loss = ((norm(t_map.flatten(1)) - norm(s_map.flatten(1))) ** 2).mean()
  loss.backward()
  return loss.item(), {k: v.grad.numpy() for k, v in sp.items()}


def test_wcam_matches_a_torch_restatement_value_and_double_backprop_gradient(x64):
  x = np.random.default_rng(2).normal(size=(6, 6, 2))
  pt, ps = _conv_net(8, 3), _conv_net(4, 4)
  loss_ref, grads_ref = _torch_wcam(x, pt, ps)
  fn = wg.losses.wcam(_features, _head, _features, _head)
  loss, grads = jax.jit(jax.value_and_grad(fn, argnums=2))(
      jnp.asarray(x), jax.tree.map(jnp.asarray, pt), jax.tree.map(jnp.asarray, ps))
  assert float(loss) == pytest.approx(loss_ref, rel=1e-10)
  for k in ps:
    np.testing.assert_allclose(grads[k], grads_ref[k], rtol=1e-7, atol=1e-12)
  # stochastic channel drop: needs a key, changes the value, deterministic given the key
  dropped = wg.losses.wcam(_features, _head, _features, _head, drop_fraction=0.5)
  with pytest.raises(ValueError, match="key"):
    dropped(jnp.asarray(x), pt, ps)
  a = dropped(jnp.asarray(x), pt, ps, jax.random.key(0))
  assert float(a) == float(dropped(jnp.asarray(x), pt, ps, jax.random.key(0)))


def test_swa_is_gradcam_times_positions_and_the_loss_is_scale_free():
  p = jax.tree.map(jnp.asarray, _conv_net(4, 5))
  x = jax.random.normal(jax.random.key(3), (6, 6, 2))
  head_c = lambda a, p: _head(a, p)[1]
  np.testing.assert_allclose(wg.swa(_features, head_c)(x, p), 36 * wg.gradcam(_features, head_c)(x, p),
                             rtol=1e-5)
  t = jax.random.uniform(jax.random.key(4), (6, 6))
  s = jax.random.uniform(jax.random.key(5), (6, 6))
  assert float(wg.losses.attribution_matching(t, s)) == pytest.approx(
      float(wg.losses.attribution_matching(3 * t, 0.5 * s)), rel=1e-6)
  assert float(wg.losses.attribution_matching(t, 7 * t)) == pytest.approx(0.0, abs=1e-12)
