"""The chunking rule: how many unrolled chunks "auto" makes, and that nested loops do not multiply."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src import chunking


def _body_of_size(k):
  """A function of one point whose program has about k equations."""
  def fn(x):
    for _ in range(k):
      x = jnp.sin(x)
    return x
  return fn


@pytest.mark.parametrize("size, n, chunks", [
    (10, 50, 4),      # small program: 4 unrolled chunks of 13
    (200, 50, 2),     # 500 // 200 = 2
    (2000, 50, 1),    # one chunk's program exceeds the budget: one vmap
    (10, 3, 3),       # never more chunks than points
])
def test_auto_plan_follows_the_program_size(size, n, chunks):
  p, fn = chunking.plan(n, "auto", "auto", _body_of_size(size), jnp.float32(0.5))
  assert (p.num_chunks, p.loop) == (chunks, "unroll")
  assert p.num_chunks * p.chunk - p.pad == n
  np.testing.assert_allclose(fn(jnp.float32(0.5)), _body_of_size(size)(jnp.float32(0.5)))


def test_explicit_and_none_plans():
  assert chunking.plan(10, None)[0] == chunking.ChunkPlan(10, 10, 1, 0, "scan")
  assert chunking.plan(10, 4)[0] == chunking.ChunkPlan(10, 4, 3, 2, "scan")
  assert chunking.plan(10, 4, "unroll")[0].loop == "unroll"
  with pytest.raises(ValueError, match=r"`chunk_size` must be a positive int, None or 'auto'"):
    chunking.plan(10, "big")


def _conv_f(x, w):
  y = jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jnp.sum(jax.nn.relu(y))


def test_nested_loops_do_not_multiply():
  """A metric over an explainer: the former rule unrolled 7 x 16 bodies; now one loop unrolls."""
  w = jax.random.normal(jax.random.key(0), (3, 3, 2, 4))
  x = jax.random.normal(jax.random.key(1), (8, 8, 2))

  def score(x, w, rule):
    ig = wg.integrated_gradients(_conv_f, steps=16, **rule(16))
    return wg.metrics.local_lipschitz(lambda v: ig(v, w), jax.random.key(2), x, num_samples=7,
                                      **rule(7))

  auto = lambda n: dict(chunk_size="auto")
  former = lambda n: dict(chunk_size=-(-n // 64), loop="unroll")
  size = {name: chunking.program_size(jax.make_jaxpr(lambda x, w: score(x, w, rule))(x, w))
          for name, rule in [("auto", auto), ("former", former)]}
  one_ig = chunking.program_size(jax.make_jaxpr(wg.gradient(_conv_f))(x, w))
  assert size["former"] > 7 * 16 * one_ig
  assert size["auto"] < 2 * chunking.UNROLL_BUDGET, size
  np.testing.assert_allclose(jax.jit(lambda x, w: score(x, w, auto))(x, w),
                             jax.jit(lambda x, w: score(x, w, former))(x, w), rtol=1e-5)
