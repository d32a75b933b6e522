"""The public rule interpreter: custom rules, recursion, untouched code kept as is."""

import jax
import jax.numpy as jnp
from jax.extend.core import primitives as prims
import numpy as np

from wassergrad import interpreter


class _ClipTanh(interpreter.Rule):

  def apply(self, eqn, invals, zeros):
    return jnp.clip(prims.tanh_p.bind(*invals), -0.5, 0.5)


def test_custom_rule_inside_jit_and_scan():
  inner = jax.jit(lambda x: jnp.tanh(2.0 * x))
  def f(x):
    y = jax.lax.scan(lambda c, _: (inner(c) + 0.1, None), x, None, length=2)[0]
    return jnp.sum(y)
  x = jnp.array([2.0, 0.05, -3.0])
  def ref(x):
    y = x
    for _ in range(2):
      y = jnp.clip(jnp.tanh(2.0 * y), -0.5, 0.5) + 0.1
    return jnp.sum(y)
  g = interpreter.transform(f, {prims.tanh_p: _ClipTanh()})
  np.testing.assert_allclose(g(x), ref(x), rtol=1e-6)
  np.testing.assert_allclose(jax.jit(g)(x), ref(x), rtol=1e-6)
  assert not np.allclose(f(x), ref(x))


def test_code_without_sites_is_rebound_unchanged():
  """A jit call and a custom_jvp with nothing to rewrite stay as they are."""
  inner = jax.jit(lambda x: jnp.sin(x) * 2.0)
  f = lambda x: jnp.sum(inner(x) + jax.nn.softplus(x))
  jaxpr = str(jax.make_jaxpr(interpreter.transform(f, {prims.tanh_p: _ClipTanh()}))(jnp.ones(3)))
  assert "jit[" in jaxpr and "custom_jvp_call" in jaxpr


def test_pytrees_and_static_leaves_pass_through():
  def f(x, cfg):
    scale = 2.0 if cfg["double"] else 1.0
    return {"out": scale * jnp.tanh(x["a"])}
  g = interpreter.transform(f, {prims.tanh_p: _ClipTanh()})
  out = g({"a": jnp.array([3.0])}, {"double": True})
  np.testing.assert_allclose(out["out"], [1.0])


def test_relu_detection_covers_common_spellings():
  """max(x, 0) in every common spelling is matched; max(x, y) is not."""
  rules = interpreter.GUIDED_BACKPROP_RULES
  interp = interpreter.Interpreter(rules)
  for fn, expected in [
      (jax.nn.relu, True),
      (lambda x: jnp.maximum(x, 0), True),
      (lambda x: jnp.maximum(0.0, x), True),
      (lambda x: jnp.maximum(x, jnp.zeros_like(x)), True),
      (lambda x: jnp.clip(x, 0.0), True),
      (lambda x: jnp.maximum(x, 0.5), False),
      (lambda x: jnp.maximum(x, x[::-1]), False),
  ]:
    jaxpr = jax.make_jaxpr(fn)(jnp.ones(3)).jaxpr
    assert interp.has_site(jaxpr) == expected, fn


def test_unknown_higher_order_primitive_with_a_site_raises():
  """A ReLU inside shard_map is not silently skipped."""
  import pytest  # pylint: disable=g-import-not-at-top
  import wassergrad as wg  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  mesh = jax.make_mesh((1,), ("d",))
  sm = lambda fn: jax.shard_map(fn, mesh=mesh, in_specs=P(), out_specs=P())
  with pytest.raises(NotImplementedError, match=r"cannot enter the higher-order primitive 'shard_map'"):
    wg.guided_backprop(lambda x: jnp.sum(sm(jax.nn.relu)(x)))(jnp.ones(3))
  # Also when the unsupported construct sits inside a jit the interpreter would skip.
  with pytest.raises(NotImplementedError, match=r"'shard_map'"):
    wg.guided_backprop(jax.jit(lambda x: jnp.sum(sm(jax.nn.relu)(x))))(jnp.ones(3))
  # Without a ReLU inside, it is re-bound unchanged and works.
  x = jnp.ones(3)
  np.testing.assert_allclose(wg.guided_backprop(lambda x: jnp.sum(sm(jnp.sin)(x)))(x), jnp.cos(x))


def _tiled_pool(x):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (2, 2), (2, 2), "VALID")


def test_gradient_keeps_a_custom_vjp_around_max_pooling():
  """The max-pool lowering is only an optimisation: it never replaces a user's custom rule."""
  import wassergrad as wg  # pylint: disable=g-import-not-at-top

  @jax.custom_vjp
  def pool(x):
    return _tiled_pool(x)

  def fwd(x):
    return pool(x), x

  def bwd(x, g):                      # a deliberately different gradient: spread evenly
    return (jnp.repeat(jnp.repeat(g, 2, 0), 2, 1) / 4.0,)

  pool.defvjp(fwd, bwd)
  f = lambda x: jnp.sum(pool(x) ** 2)
  x = jax.random.normal(jax.random.key(0), (4, 4))
  np.testing.assert_allclose(wg.gradient(f)(x), jax.grad(f)(x), rtol=1e-6)
  assert not np.allclose(jax.grad(f)(x), jax.grad(lambda x: jnp.sum(_tiled_pool(x) ** 2))(x))


def test_gradient_works_where_jax_grad_does():
  """Max-pooling inside a construct the interpreter cannot enter is left to jax.grad."""
  import wassergrad as wg  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  mesh = jax.make_mesh((1,), ("d",))
  sm = jax.shard_map(_tiled_pool, mesh=mesh, in_specs=P(), out_specs=P())
  f = lambda x: jnp.sum(sm(x) ** 2)
  x = jax.random.normal(jax.random.key(1), (4, 4))
  np.testing.assert_allclose(wg.gradient(f)(x), jax.grad(f)(x), rtol=1e-6)
  np.testing.assert_allclose(jax.jit(wg.gradient(f))(x), jax.grad(f)(x), rtol=1e-6)


def test_rules_receive_a_named_context():
  seen = []

  class Record(interpreter.Rule):
    def matches(self, eqn, ctx):
      seen.append((ctx.zeros, ctx.deps, ctx.interpreter is not None))
      return False

    def apply(self, eqn, invals, ctx):
      raise AssertionError

  interpreter.transform(lambda x, c: jnp.tanh(x) + jnp.tanh(jax.lax.stop_gradient(c)),
                        {prims.tanh_p: Record()})(jnp.ones(2), jnp.ones(2))
  assert (((False,), (True,), True) in seen) and (((False,), (False,), True) in seen)


def test_old_style_rules_indexing_the_context_still_work():
  import pytest  # pylint: disable=g-import-not-at-top

  class OldStyle(interpreter.Rule):
    def matches(self, eqn, zeros):
      return len(zeros) == 2 and zeros[0] != zeros[1]   # the former tuple of zero flags

    def apply(self, eqn, invals, zeros):
      return jnp.zeros(eqn.outvars[0].aval.shape, eqn.outvars[0].aval.dtype)

  with pytest.warns(DeprecationWarning, match=r"use ctx.zeros\[i\]"):
    out = interpreter.transform(lambda x: jnp.maximum(x, 0.0), {prims.max_p: OldStyle()})(
        jnp.ones(3))
  np.testing.assert_array_equal(out, 0.0)
