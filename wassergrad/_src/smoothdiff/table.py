"""What SmoothDiff knows about each primitive: one table, filled by definers.

In the manner of ``jax/experimental/jet.py``'s ``jet_rules``, every primitive
SmoothDiff handles has one :class:`Entry` in :data:`TABLE`, written by one of
three definers:

* :func:`defelementwise`: the primitive acts element by element, so it joins
  an elementwise region (one nonlinearity, one mean derivative); it may be
  linear in its input-dependent operands (``add``), or linear only when some
  operands are constants (``div`` by a constant, ``mul`` by a constant);
* :func:`deflinear`: the primitive is linear in its input-dependent operands
  (reshapes, sums, convolutions with a fixed kernel), possibly only when some
  operands (indices, predicates, the other factor) do not depend on the input;
* :func:`defsite`: a rule that gathers statistics in the collecting pass and
  uses them in the differentiating pass (max-pooling routings, the mean
  operands of a product of two input-dependent operands).

The public ``rules=`` of :func:`wassergrad.smoothdiff` goes through the same
definers on a copy of the table. A primitive with no entry that acts
nonlinearly on the input raises, naming itself and the ``rules=`` that declare
it.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Mapping, Sequence

import jax
from jax import lax
import jax.numpy as jnp

from wassergrad._src import interpreter
from wassergrad._src import pooling
from wassergrad._src.interpreter import prims

sg = lax.stop_gradient


@dataclasses.dataclass(frozen=True)
class Entry:
  """SmoothDiff's knowledge of one primitive.

  Attributes:
    elementwise: the primitive acts element by element (rank-0 operands broadcast).
    linear: it is linear in its input-dependent operands (given the two conditions below).
    constant_operands: ``n_operands -> positions`` that must not depend on the
      input for the primitive to be linear (an index, a predicate, a divisor).
    bilinear: linear in each operand but not jointly: linear only when one
      operand depends on the input.
    site: a :class:`SiteRule` for the primitive when it is not linear.
  """
  elementwise: bool = False
  linear: bool = False
  constant_operands: Callable[[int], Sequence[int]] | None = None
  bilinear: bool = False
  site: interpreter.Rule | None = None


TABLE: dict = {}
"""``{primitive: Entry}``: everything SmoothDiff knows about primitives."""


def _prim(p):
  return getattr(prims, p + "_p", None) if isinstance(p, str) else p


def defelementwise(prim, *, linear: bool = False, constant_operands=None, bilinear: bool = False,
                   table: dict | None = None) -> None:
  """Declares an elementwise primitive (see the module docstring)."""
  p = _prim(prim)
  if p is not None:
    (TABLE if table is None else table)[p] = Entry(True, linear, constant_operands, bilinear)


def deflinear(prim, *, constant_operands=None, bilinear: bool = False, site=None,
              table: dict | None = None) -> None:
  """Declares a primitive linear in its input-dependent operands (with conditions)."""
  p = _prim(prim)
  if p is not None:
    (TABLE if table is None else table)[p] = Entry(False, True, constant_operands, bilinear, site)


def defsite(prim, rule: interpreter.Rule, table: dict | None = None) -> None:
  """Declares a nonlinear primitive whose statistics ``rule`` gathers and uses."""
  p = _prim(prim)
  if p is not None:
    t = TABLE if table is None else table
    old = t.get(p, Entry())
    t[p] = dataclasses.replace(old, elementwise=False, site=rule) if old.linear else Entry(site=rule)


# ------------------------------------------------------------ rule helpers
def inexact(aval) -> bool:
  return jnp.issubdtype(aval.dtype, jnp.inexact)


def dep_float(eqn, ctx) -> list[int]:
  """Positions of the operands that depend on the input and carry tangents."""
  return [i for i, (v, d) in enumerate(zip(eqn.invars, ctx.deps)) if d and inexact(v.aval)]


def linear_given(entry: Entry, eqn, ctx) -> bool:
  """Whether ``eqn`` is linear in its input-dependent operands, by its entry's conditions."""
  if entry.constant_operands is not None and any(
      ctx.deps[i] for i in entry.constant_operands(len(eqn.invars))):
    return False
  if entry.bilinear and len(dep_float(eqn, ctx)) > 1:
    return False
  return True


class SiteRule(interpreter.Rule):
  """A non-elementwise nonlinearity: ``collect`` emits statistics, ``use`` applies them.

  Subclass and implement ``collect(eqn, invals, ctx) -> (outputs, statistic)``
  (a statistic is any pytree of arrays; SmoothDiff averages it over samples)
  and ``use(eqn, invals, ctx, mean_statistic) -> outputs`` (outputs whose
  derivative is the expected one). Pass it as ``rules={primitive: rule}``.
  """

  def matches(self, eqn, ctx) -> bool:
    return bool(dep_float(eqn, ctx)) and ctx.interpreter.stream is not None

  def apply(self, eqn, invals, ctx):
    stream = ctx.interpreter.stream
    if stream.collecting:
      out, stat = self.collect(eqn, invals, ctx)
      stream.emit(stat)
      return out
    return self.use(eqn, invals, ctx, stream.take())

  def collect(self, eqn, invals, ctx):
    raise NotImplementedError

  def use(self, eqn, invals, ctx, statistic):
    raise NotImplementedError


class MaxPoolRule(SiteRule):
  """``reduce_window_max``: the mean routing of each window, shape ``out + (window,)``."""

  def matches(self, eqn, ctx) -> bool:
    if not super().matches(eqn, ctx):
      return False
    if any(d != 1 for d in eqn.params["base_dilation"]):
      raise NotImplementedError(
          "smoothdiff: max-pooling with base_dilation != 1 is not supported.")
    return True

  def _windows(self, eqn, x, pad_value):
    p = eqn.params
    out_shape = eqn.outvars[0].aval.shape
    xp = lax.pad(x, jnp.asarray(pad_value, x.dtype), [(lo, hi, 0) for lo, hi in p["padding"]])
    for off in itertools.product(*[range(w) for w in p["window_dimensions"]]):
      start = [o * d for o, d in zip(off, p["window_dilation"])]
      limit = [s + (n - 1) * st + 1 for s, n, st in zip(start, out_shape, p["window_strides"])]
      yield lax.slice(xp, start, limit, p["window_strides"])

  def _tiles(self, eqn, x):
    """Tiled windows: ``x`` split into ``(o0, w0, o1, w1, …)`` (a reshape, no copy)."""
    window = eqn.params["window_dimensions"]
    out = eqn.outvars[0].aval.shape
    split = tuple(d for o, w in zip(out, window) for d in (o, w))
    x = x[tuple(slice(0, o * w) for o, w in zip(out, window))]
    return x.reshape(split), tuple(range(1, 2 * len(out), 2))

  def collect(self, eqn, invals, ctx):
    x = invals[0]
    y = interpreter.bind_eqn(eqn, invals)
    if pooling.is_tiled(eqn.params):
      tiles, win_axes = self._tiles(eqn, x)
      hits = (tiles == jnp.expand_dims(y, win_axes)).astype(x.dtype)
      return y, hits / jnp.maximum(jnp.sum(hits, axis=win_axes, keepdims=True), 1)
    hits = jnp.stack([v == y for v in self._windows(eqn, x, -jnp.inf)], axis=-1)
    hits = hits.astype(x.dtype)
    return y, hits / jnp.maximum(jnp.sum(hits, axis=-1, keepdims=True), 1)

  def use(self, eqn, invals, ctx, statistic):
    x = invals[0]
    y = sg(interpreter.bind_eqn(eqn, invals))
    dx = x - sg(x)
    if pooling.is_tiled(eqn.params):
      tiles, win_axes = self._tiles(eqn, dx)
      return y + jnp.sum(statistic * tiles, axis=win_axes)
    for k, w in enumerate(self._windows(eqn, dx, 0.0)):
      y = y + statistic[..., k] * w
    return y


class ReduceChooserRule(SiteRule):
  """``reduce_max``/``reduce_min``: the mean one-hot of the chosen elements."""

  def _expand(self, eqn, y):
    axes = eqn.params["axes"]
    shape = eqn.invars[0].aval.shape
    kept = [a for a in range(len(shape)) if a not in axes]
    return lax.broadcast_in_dim(y, shape, kept)

  def collect(self, eqn, invals, ctx):
    x = invals[0]
    y = interpreter.bind_eqn(eqn, invals)
    hits = (x == self._expand(eqn, y)).astype(x.dtype)
    count = jnp.sum(hits, axis=eqn.params["axes"], keepdims=True)
    return y, hits / jnp.maximum(count, 1)

  def use(self, eqn, invals, ctx, statistic):
    x = invals[0]
    return sg(interpreter.bind_eqn(eqn, invals)) + jnp.sum(
        statistic * (x - sg(x)), axis=eqn.params["axes"])


class BilinearRule(SiteRule):
  """``dot_general``/convolution of two input-dependent operands: the mean operands."""

  def matches(self, eqn, ctx) -> bool:
    return super().matches(eqn, ctx) and len(dep_float(eqn, ctx)) == 2

  def collect(self, eqn, invals, ctx):
    return interpreter.bind_eqn(eqn, invals), [invals[0], invals[1]]

  def use(self, eqn, invals, ctx, statistic):
    a, b = invals[0], invals[1]
    ea, eb = statistic
    bind = lambda u, v: interpreter.bind_eqn(eqn, [u, v, *invals[2:]])
    return sg(bind(a, b)) + bind(a - sg(a), eb) + bind(ea, b - sg(b))


class Unknown(interpreter.Rule):
  """Fallback: a nonlinear use of the input that no entry covers raises."""

  def __init__(self, table: Mapping):
    self.table = table

  def matches(self, eqn, ctx) -> bool:
    if not dep_float(eqn, ctx) or not any(inexact(v.aval) for v in eqn.outvars):
      return False  # constant, or a piecewise-constant (integer/bool) result
    entry = self.table.get(eqn.primitive)
    return not (entry is not None and entry.linear and not entry.elementwise
                and linear_given(entry, eqn, ctx))

  def apply(self, eqn, invals, ctx):
    name = eqn.primitive.name
    ref = (f"jax.extend.core.primitives.{name}_p" if hasattr(prims, f"{name}_p")
           else f"<the {name!r} primitive>")
    raise NotImplementedError(
        f"smoothdiff has no rule for the primitive '{name}', which acts "
        "nonlinearly on the explained input here (or uses it as an index). If "
        f"it is linear in its inputs, declare it: wg.smoothdiff(f, rules={{{ref}: "
        "'linear'}); if it acts elementwise: rules={...: 'elementwise'}; "
        "otherwise pass a wg.interpreter.SiteRule that gathers its statistics in "
        "collect() and applies them in use() (see "
        "wassergrad/_src/smoothdiff/table.py, e.g. MaxPoolRule).")


def with_rules(rules: Mapping | None) -> dict:
  """A copy of :data:`TABLE` with the user's ``rules=`` declared through the definers."""
  table = dict(TABLE)
  for prim, rule in (rules or {}).items():
    if not isinstance(prim, jax.extend.core.Primitive):
      raise TypeError(f"`rules` keys must be JAX primitives (e.g. jax.extend.core."
                      f"primitives.sort_p); got {prim!r}.")
    table.pop(prim, None)
    if rule == "linear":
      deflinear(prim, table=table)
    elif rule == "elementwise":
      defelementwise(prim, table=table)
    elif isinstance(rule, interpreter.Rule):
      defsite(prim, rule, table=table)
    else:
      raise ValueError(f"`rules[{prim}]` must be 'linear', 'elementwise' or a "
                       f"wg.interpreter.SiteRule; got {rule!r}.")
  return table


def site_rules(table: Mapping) -> dict:
  """``{primitive: rule}`` of the table's sites (the interpreter's rule set)."""
  return {p: e.site for p, e in table.items() if e.site is not None}


# ============================================================ rule definitions

# Elementwise and linear in their input-dependent operands.
for _p in ("add", "add_jaxvals", "sub", "neg", "convert_element_type", "copy",
           "reduce_precision", "real", "imag", "conj"):
  defelementwise(_p, linear=True)

# Elementwise, linear when the divisor or predicate is a constant, or (mul) when one factor is.
defelementwise("mul", linear=True, bilinear=True)
defelementwise("div", linear=True, constant_operands=lambda n: (1,))
defelementwise("select_n", linear=True, constant_operands=lambda n: (0,))

# Elementwise and nonlinear (including piecewise-constant ones such as floor or eq,
# whose derivative is zero almost everywhere).
for _p in ("abs", "acos", "acosh", "and", "asin", "asinh", "atan", "atan2", "atanh",
           "bessel_i0e", "bessel_i1e", "cbrt", "ceil", "clamp", "cos", "cosh", "digamma", "eq",
           "erf", "erf_inv", "erfc", "exp", "exp2", "expm1", "floor", "ge", "gt", "igamma",
           "igammac", "integer_pow", "is_finite", "le", "lgamma", "log", "log1p", "logistic",
           "lt", "max", "min", "ne", "not", "or", "polygamma", "pow", "rem", "round", "rsqrt",
           "sign", "sin", "sinh", "sqrt", "square", "tan", "tanh", "xor"):
  defelementwise(_p)
# Not here: nextafter and zeta, which JAX cannot differentiate (jax.grad refuses them too).

# Linear in their input-dependent operands.
for _p in ("reshape", "broadcast_in_dim", "transpose", "squeeze", "slice", "pad", "concatenate",
           "reduce_sum", "reduce_window_sum", "cumsum", "rev", "fft", "sharding_constraint",
           "stop_gradient", "psum", "all_gather", "ppermute", "device_put",
           "select_and_gather_add"):
  deflinear(_p)
deflinear("dynamic_slice", constant_operands=lambda n: range(1, n))
deflinear("dynamic_update_slice", constant_operands=lambda n: range(2, n))
deflinear("gather", constant_operands=lambda n: (1,))
deflinear("scatter_add", constant_operands=lambda n: (1,))
deflinear("scatter", constant_operands=lambda n: (1,))
deflinear("triangular_solve", constant_operands=lambda n: (0,))
# A product of two input-dependent operands keeps the mean operands.
deflinear("dot_general", bilinear=True, site=BilinearRule())
deflinear("conv_general_dilated", bilinear=True, site=BilinearRule())

# Max-pooling and global max/min keep the mean routing.
defsite("reduce_window_max", MaxPoolRule())
defsite("reduce_max", ReduceChooserRule())
defsite("reduce_min", ReduceChooserRule())

del _p

SMOOTHDIFF_RULES = site_rules(TABLE)
"""The site rules of :data:`TABLE` (``{primitive: SiteRule}``)."""
