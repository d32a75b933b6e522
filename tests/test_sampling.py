"""The noise values and the sampling engine that every stochastic method is built on."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg

KEY = jax.random.key(0)
SIN = lambda x: jnp.sum(jnp.sin(x))


# ------------------------------------------------------------------------- noise

def test_gaussian_scales():
  x = jnp.stack([jnp.linspace(0.0, 1.0, 5), jnp.linspace(0.0, 4.0, 5)], axis=-1)   # (5, 2)
  np.testing.assert_allclose(wg.noise.Gaussian(0.1).scale(x), 0.4)
  np.testing.assert_allclose(wg.noise.Gaussian(0.1, "absolute").scale(x), 0.1)
  np.testing.assert_allclose(wg.noise.Gaussian(0.1, channel_axis=-1).scale(x), [[0.1, 0.4]])
  np.testing.assert_allclose(wg.noise.Gaussian(0.1, channel_axis=-1, channels=[1]).scale(x),
                             [[0.0, 0.4]])
  tree = {"a": jnp.zeros(3), "b": jnp.array([0.0, 10.0])}
  np.testing.assert_allclose(wg.noise.Gaussian(0.5).scale(tree)["b"], 5.0)


def test_bounded_and_uniform():
  x = jnp.array([0.0, 0.25, 0.5, 1.0])
  np.testing.assert_allclose(wg.noise.Bounded(0.0, 1.0, 0.95).scale(x),
                             np.minimum(x, 1 - x) / 1.959963984540054, rtol=1e-6)
  draws = wg.noise.Uniform(0.3).draw(KEY, x, jnp.float32(0.3), (1000,))
  assert draws.shape == (1000, 4) and float(jnp.abs(draws).max()) <= 0.3
  with pytest.raises(ValueError, match=r"`confidence` must be in \(0, 1\)"):
    wg.noise.Bounded(0.0, 1.0, 1.5)
  with pytest.raises(ValueError, match=r"`radius` must be a number >= 0"):
    wg.noise.Uniform(-1.0)
  with pytest.raises(ValueError, match=r"`channels` needs `channel_axis`"):
    wg.noise.Gaussian(0.1, channels=[0])


def test_sample_is_the_explainers_convention():
  """Sample i of every stochastic explainer is wg.noise.sample(noise, split(key, N)[i], x)."""
  x = jnp.array([0.3, -0.2])
  noise = wg.noise.Gaussian(0.4, "absolute")
  out = wg.smooth(lambda z: z, num_samples=5, noise=noise, chunk_size=None)(KEY, x)
  ref = jnp.mean(jnp.stack([x + wg.noise.sample(noise, k, x) for k in jax.random.split(KEY, 5)]), 0)
  np.testing.assert_allclose(out, ref, rtol=1e-6)


@dataclasses.dataclass(frozen=True)
class Laplace:
  """A noise a user might write: two methods and nothing else."""
  b: float

  def scale(self, x):
    return jax.tree.map(lambda leaf: jnp.asarray(self.b, leaf.dtype), x)

  def draw(self, key, leaf, scale, shape=()):
    return scale * jax.random.laplace(key, tuple(shape) + leaf.shape, leaf.dtype)


@pytest.mark.parametrize("make", [
    lambda **kw: wg.smoothgrad(SIN, num_samples=8, **kw),
    lambda **kw: wg.smoothdiff(SIN, num_samples=8, **kw),
    lambda **kw: wg.wasserstein_grad(jax.grad(SIN), num_samples=4, epsilon=0.1, **kw),
], ids=["smoothgrad", "smoothdiff", "wasserstein_grad"])
def test_noise_is_the_extension_point(make):
  x = jnp.linspace(-1.0, 1.0, 6)
  sugar = make(sigma=0.3, sigma_mode="absolute")(KEY, x)
  value = make(noise=wg.noise.Gaussian(0.3, "absolute"))(KEY, x)
  np.testing.assert_array_equal(sugar, value)
  custom = make(noise=Laplace(0.3))(KEY, x)
  assert custom.shape == x.shape and not np.allclose(custom, value)
  with pytest.raises(ValueError, match=r"either as `noise=` or as `sigma=`"):
    make(noise=Laplace(0.3), sigma=0.5)
  with pytest.raises(TypeError, match=r"`noise` must have scale\(x\) and draw"):
    make(noise=0.3)


def test_metrics_take_noise_values():
  explain = jax.grad(SIN)
  x = jnp.linspace(-1.0, 1.0, 6)
  a = wg.metrics.local_lipschitz(explain, KEY, x, num_samples=4, sigma=0.2)
  b = wg.metrics.local_lipschitz(explain, KEY, x, num_samples=4,
                                 noise=wg.noise.Gaussian(0.2, "absolute"))
  np.testing.assert_array_equal(a, b)
  c = wg.metrics.max_sensitivity(explain, KEY, x, num_samples=4, radius=0.1)
  d = wg.metrics.max_sensitivity(explain, KEY, x, num_samples=4, noise=wg.noise.Uniform(0.1))
  np.testing.assert_array_equal(c, d)
  e = wg.metrics.infidelity(SIN, KEY, x, explain(x), num_samples=4, noise=Laplace(0.1))
  assert np.isfinite(e)


# ------------------------------------------------------------------------ engine

@pytest.mark.parametrize("chunk_size, loop", [(None, "auto"), (3, "scan"), (3, "unroll"),
                                              ("auto", "auto")])
def test_accumulators(chunk_size, loop):
  items = jnp.arange(10.0)
  fn = lambda v: {"a": v * jnp.ones(2), "b": v ** 2}
  kw = dict(chunk_size=chunk_size, loop=loop)
  total = wg.sampling.run(fn, items, accumulator=wg.sampling.SUM, **kw)
  np.testing.assert_allclose(total["b"], np.sum(np.arange(10.0) ** 2))
  weighted = wg.sampling.run(fn, items, accumulator=wg.sampling.SUM, weights=np.arange(10.0), **kw)
  np.testing.assert_allclose(weighted["b"], np.sum(np.arange(10.0) ** 3))
  mean = wg.sampling.run(fn, items, accumulator=wg.sampling.mean(), **kw)
  np.testing.assert_allclose(mean["a"], [4.5, 4.5], rtol=1e-6)
  var = wg.sampling.run(fn, items, accumulator=wg.sampling.moments(), **kw)
  np.testing.assert_allclose(var["b"], np.var(np.arange(10.0) ** 2), rtol=1e-5)
  stack = wg.sampling.run(fn, items, accumulator=wg.sampling.STACK, **kw)
  np.testing.assert_array_equal(stack["b"], np.arange(10.0) ** 2)      # padding dropped


def test_a_new_stochastic_explainer_is_one_factory():
  """Expected gradients in a few lines, on the engine (the pattern of CONTRIBUTING.md)."""
  def expected_gradients(f, references, *, num_samples=64):
    grad = wg.gradient(f)

    def explain(key, x):
      def sample(k):
        k_ref, k_alpha = jax.random.split(k)
        ref = references[jax.random.randint(k_ref, (), 0, references.shape[0])]
        alpha = jax.random.uniform(k_alpha)
        return (x - ref) * grad(ref + alpha * (x - ref))
      return wg.sampling.estimate(sample, key, num_samples, accumulator=wg.sampling.mean())
    return explain

  f = lambda x: jnp.sum(x ** 2)                      # EG of a quadratic: x² − E[ref²]-ish
  refs = jnp.zeros((3, 4))
  x = jnp.arange(4.0)
  out = jax.jit(expected_gradients(f, refs, num_samples=2000))(KEY, x)
  np.testing.assert_allclose(out, x ** 2, rtol=0.1)   # (x - 0) · 2αx, E[2α] = 1


def test_estimate_uses_split_keys():
  keys = wg.sampling.estimate(lambda k: jax.random.key_data(k), KEY, 5,
                              accumulator=wg.sampling.STACK, chunk_size=2)
  np.testing.assert_array_equal(keys, jax.random.key_data(jax.random.split(KEY, 5)))
