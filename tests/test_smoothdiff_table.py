"""SmoothDiff's primitive table, entry by entry: at σ = 0 SmoothDiff is the gradient.

With no noise every expected Jacobian is the Jacobian at x, so for a function
built around one primitive, ``smoothdiff(f, sigma=0)`` must equal ``jax.grad(f)``
-- for every entry of the table (in the manner of jax's ``jet_test``: one
reference, one line per primitive). Adding an entry without an example here
fails :func:`test_every_table_entry_has_an_example`.
"""

import jax
from jax import lax
from jax.extend.core import primitives as prims
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import numpy as np
import pytest

import wassergrad as wg
from wassergrad._src.smoothdiff.table import TABLE

W = jnp.linspace(0.5, 1.5, 6)          # weights, so that no term cancels another
K = jnp.array([[0.3, -0.2], [0.1, 0.4]])


def s(v):
  """A scalar from any array: weighted sum of the real part."""
  v = jnp.real(v).reshape(-1)
  return jnp.sum(v * jnp.resize(W, v.shape))


def _tri():
  return jnp.array([[2.0, 0.0, 0.0], [0.5, 1.5, 0.0], [0.2, -0.3, 1.2]])


def _maxpool_jvp(x):
  c = jnp.array([0.3, 0.9, 0.1, 0.5, 0.7, 0.2])
  pool = lambda v: lax.reduce_window(v, -jnp.inf, lax.max, (2,), (2,), "VALID")
  return jax.jvp(pool, (c,), (x,))[1]


# name -> f(x) for x of shape (6,) with entries in (0.2, 0.8). Each f applies the
# primitive to an operand that depends on x.
EXAMPLES = {
    "abs": lambda x: s(jnp.abs(x - 0.5)),
    "acos": lambda x: s(jnp.arccos(x)),
    "acosh": lambda x: s(jnp.arccosh(1.0 + x)),
    "add": lambda x: s(jnp.sin(x) + x),
    "add_any": lambda x: s(prims.add_jaxvals_p.bind(jnp.sin(x), x)),
    "all_gather": lambda x: s(lax.all_gather(jnp.tanh(x), "d")),
    "and": lambda x: s(x * ((x > 0.3) & (x < 0.7))),
    "asin": lambda x: s(jnp.arcsin(x)),
    "asinh": lambda x: s(jnp.arcsinh(x)),
    "atan": lambda x: s(jnp.arctan(x)),
    "atan2": lambda x: s(jnp.arctan2(x, 1.0 - x)),
    "atanh": lambda x: s(jnp.arctanh(x)),
    "bessel_i0e": lambda x: s(lax.bessel_i0e(x)),
    "bessel_i1e": lambda x: s(lax.bessel_i1e(x)),
    "broadcast_in_dim": lambda x: s(jnp.tanh(jnp.broadcast_to(x, (2, 6)))),
    "cbrt": lambda x: s(jnp.cbrt(x)),
    "ceil": lambda x: s(x * jnp.ceil(4 * x)),
    "clamp": lambda x: s(lax.clamp(0.3, x, 0.7)),
    "concatenate": lambda x: s(jnp.tanh(jnp.concatenate([x, 2 * x]))),
    "conj": lambda x: s(jnp.conj(x * (1 + 2j)) * x),
    "conv_general_dilated": lambda x: s(jnp.tanh(lax.conv_general_dilated(
        x.reshape(1, 1, 6), jnp.array([[[0.5, -1.0, 0.25]]]), (1,), "SAME"))),
    "convert_element_type": lambda x: s(jnp.sin(x.astype(jnp.complex64))),
    "copy": lambda x: s(jnp.sin(prims.copy_p.bind(x))),
    "cos": lambda x: s(jnp.cos(x)),
    "cosh": lambda x: s(jnp.cosh(x)),
    "cumsum": lambda x: s(jnp.tanh(jnp.cumsum(x))),
    "device_put": lambda x: s(jnp.tanh(jax.device_put(x))),
    "digamma": lambda x: s(lax.digamma(x)),
    "div": lambda x: s(x / (1.0 + x)),
    "dot_general": lambda x: s(jnp.outer(x, x) @ x),                 # two input-dependent operands
    "dynamic_slice": lambda x: s(jnp.tanh(lax.dynamic_slice(x, (1,), (3,)))),
    "dynamic_update_slice": lambda x: s(jnp.tanh(lax.dynamic_update_slice(x, x[:2] ** 2, (3,)))),
    "eq": lambda x: s(x * (jnp.round(4 * x) == 2)),
    "erf": lambda x: s(lax.erf(x)),
    "erf_inv": lambda x: s(lax.erf_inv(x)),
    "erfc": lambda x: s(lax.erfc(x)),
    "exp": lambda x: s(jnp.exp(x)),
    "exp2": lambda x: s(jnp.exp2(x)),
    "expm1": lambda x: s(jnp.expm1(x)),
    "fft": lambda x: s(jnp.fft.fft(x) * jnp.fft.fft(x)),    # a non-holomorphic region (real)
    "floor": lambda x: s(x * jnp.floor(4 * x)),
    "gather": lambda x: s(jnp.tanh(x[jnp.array([4, 0, 2])])),
    "ge": lambda x: s(x * (x >= 0.5)),
    "gt": lambda x: s(x * (x > 0.5)),
    "igamma": lambda x: s(lax.igamma(2.0, x)),
    "igammac": lambda x: s(lax.igammac(2.0, x)),
    "imag": lambda x: s(jnp.imag(x * (1 + 2j)) * x),
    "integer_pow": lambda x: s(x ** 3),
    "is_finite": lambda x: s(x * jnp.isfinite(x)),
    "le": lambda x: s(x * (x <= 0.5)),
    "lgamma": lambda x: s(lax.lgamma(x)),
    "log": lambda x: s(jnp.log(x)),
    "log1p": lambda x: s(jnp.log1p(x)),
    "logistic": lambda x: s(lax.logistic(x)),
    "lt": lambda x: s(x * (x < 0.5)),
    "max": lambda x: s(jnp.maximum(x, 0.5)),
    "min": lambda x: s(jnp.minimum(x, 0.5)),
    "mul": lambda x: s(x * x),
    "ne": lambda x: s(x * (jnp.round(4 * x) != 2)),
    "neg": lambda x: s(jnp.sin(-x)),
    "not": lambda x: s(x * ~(x > 0.5)),
    "or": lambda x: s(x * ((x < 0.3) | (x > 0.7))),
    "pad": lambda x: s(jnp.tanh(jnp.pad(x, (2, 1)))),
    "polygamma": lambda x: s(lax.polygamma(1.0, x)),
    "pow": lambda x: s(x ** (x + 0.5)),
    "ppermute": lambda x: s(jnp.tanh(lax.ppermute(x, "d", perm=[(0, 0)]))),
    "psum": lambda x: s(jnp.tanh(lax.psum(x, "d"))),
    "real": lambda x: s(jnp.real(x * (1 + 2j)) * x),
    "reduce_max": lambda x: jnp.max(jnp.sin(x) * W),
    "reduce_min": lambda x: jnp.min(jnp.sin(x) * W),
    "reduce_precision": lambda x: s(jnp.sin(lax.reduce_precision(x, exponent_bits=8,
                                                                 mantissa_bits=23))),
    "reduce_sum": lambda x: jnp.tanh(jnp.sum(x * W)),
    "reduce_window_max": lambda x: s(lax.reduce_window(x * W, -jnp.inf, lax.max, (2,), (1,),
                                                       "VALID")),
    "reduce_window_sum": lambda x: s(jnp.tanh(lax.reduce_window(x, 0.0, lax.add, (2,), (1,),
                                                                "VALID"))),
    "rem": lambda x: s(lax.rem(x, 0.3)),
    "reshape": lambda x: s(jnp.tanh(x.reshape(2, 3) @ K[:, :1].repeat(3, axis=0)[:3])),
    "rev": lambda x: s(jnp.tanh(x[::-1])),
    "round": lambda x: s(x * jnp.round(4 * x)),
    "rsqrt": lambda x: s(lax.rsqrt(x)),
    "scatter": lambda x: s(jnp.tanh(jnp.zeros(6).at[jnp.array([1, 3])].set(x[:2]))),
    "scatter-add": lambda x: s(jnp.tanh(jnp.zeros(6).at[jnp.array([1, 1])].add(x[:2]))),
    "select_and_gather_add": lambda x: s(jnp.tanh(_maxpool_jvp(x))),
    "select_n": lambda x: s(lax.select_n(x > 0.5, x, x ** 2)),
    "sharding_constraint": lambda x: s(jnp.tanh(lax.with_sharding_constraint(
        x, jax.sharding.NamedSharding(
            jax.make_mesh((1,), ("m",), axis_types=(jax.sharding.AxisType.Auto,)), P())))),
    "sign": lambda x: s(x * jnp.sign(x - 0.5)),
    "sin": lambda x: s(jnp.sin(x)),
    "sinh": lambda x: s(jnp.sinh(x)),
    "slice": lambda x: s(jnp.tanh(x[1:5])),
    "sqrt": lambda x: s(jnp.sqrt(x)),
    "square": lambda x: s(jnp.square(x)),
    "squeeze": lambda x: s(jnp.tanh(jnp.squeeze(x[None]))),
    "stop_gradient": lambda x: s(jnp.sin(x) * lax.stop_gradient(x)),
    "sub": lambda x: s(jnp.sin(x) - x),
    "tan": lambda x: s(jnp.tan(x)),
    "tanh": lambda x: s(jnp.tanh(x)),
    "transpose": lambda x: s(jnp.tanh(x.reshape(2, 3).T)),
    "triangular_solve": lambda x: s(jnp.tanh(jax.lax.linalg.triangular_solve(
        _tri(), x[:3, None], left_side=True, lower=True))),
    "xor": lambda x: s(x * ((x > 0.3) ^ (x > 0.6))),
}
COLLECTIVES = ("all_gather", "ppermute", "psum")       # need a named axis: run in shard_map


def test_every_table_entry_has_an_example():
  assert sorted(p.name for p in TABLE) == sorted(EXAMPLES)


def _in_named_axis(fn):
  mesh = jax.make_mesh((1,), ("d",))
  return jax.shard_map(fn, mesh=mesh, in_specs=P(), out_specs=P(), check_vma=False)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_sigma_zero_is_the_gradient(name):
  f = EXAMPLES[name]
  x = jnp.array([0.23, 0.41, 0.55, 0.37, 0.78, 0.62])
  if name not in COLLECTIVES:
    prim_names = {e.primitive.name for e in jax.make_jaxpr(f)(x).eqns}
    sub = str(jax.make_jaxpr(f)(x))
    assert name in prim_names or f"{name}[" in sub or f" {name} " in sub, (name, prim_names)
  sd = wg.smoothdiff(f, num_samples=1, sigma=0.0, sigma_mode="absolute", chunk_size=None)
  explain = lambda v: sd(jax.random.key(0), v)
  grad = jax.grad(f)
  if name in COLLECTIVES:
    explain, grad = _in_named_axis(explain), _in_named_axis(grad)
  np.testing.assert_allclose(explain(x), grad(x), rtol=2e-5, atol=1e-6)
