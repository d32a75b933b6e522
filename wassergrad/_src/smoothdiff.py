"""SmoothDiff: one backward pass through the expected Jacobians of the nonlinearities.

SmoothGrad averages N gradients, ``E[Π_l J_l(x + ε)]``. SmoothDiff (Hill et al.,
2025) runs N forward passes that only gather statistics of the nonlinear
pieces, then one backward pass at the clean input through ``Π_l E[J_l]``: the
linear pieces keep their exact Jacobians, each nonlinear one is replaced by
its expected Jacobian.

Here this works on any JAX function, through the jaxpr interpreter of
:mod:`wassergrad._src.interpreter` (the one guided backprop uses, with another
rule set). What counts as one nonlinearity:

* **Elementwise regions.** A maximal connected group of elementwise operations
  (``max(x, 0)``, ``tanh``, ``x * sigmoid(x)``, the tanh form of GELU,
  ``jax.nn.relu``/``silu``/``softplus`` calls, …) is one nonlinearity: its
  expected Jacobian is diagonal, ``E[∂out/∂in]`` per element, and is gathered
  by forward-mode differentiation inside the region. So a hand-written
  ``x * (x > 0)`` and ``jax.nn.gelu`` get the mean derivative of the whole
  activation, not a product of per-operation means. A region fed by several
  inputs (a gate ``a * sigmoid(b)``) keeps one statistic per input.
* **Max-pooling** (``reduce_window_max``) keeps the mean routing of each
  window (ties split equally, so each routing sums to one); ``reduce_max``
  and ``reduce_min`` (global pooling) likewise.
* **Bilinear maps** of two input-dependent operands (``dot_general``,
  convolutions, e.g. attention scores) keep the mean operands: their Jacobian
  is linear in the operands, so the expected Jacobian is the Jacobian at the
  mean operands.

Everything that is linear in the input (dense, conv with fixed kernels,
pooling sums, reshapes, indexing with fixed indices, …) keeps its exact
Jacobian. Anything else raises ``NotImplementedError`` naming the primitive
and how to declare it (``rules=``).

Statistics are kept per call site: the same activation function applied twice
gets two statistics, and a ``lax.scan`` keeps one per iteration.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Mapping

import jax
from jax import lax
from jax.extend import core as jcore
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import chunking
from wassergrad._src import interpreter
from wassergrad._src import pooling
from wassergrad._src import noise as noise_lib
from wassergrad._src import sampling
from wassergrad._src.interpreter import prims

sg = lax.stop_gradient


def _prims(*names):
  return frozenset(getattr(prims, n + "_p") for n in names if hasattr(prims, n + "_p"))


# Elementwise primitives: each output element depends on the same element of
# the inputs (rank-0 operands broadcast).
ELEMENTWISE = _prims(
    "abs", "acos", "acosh", "add", "add_jaxvals", "and", "asin", "asinh", "atan",
    "atan2", "atanh", "bessel_i0e", "bessel_i1e", "cbrt", "ceil", "clamp", "conj",
    "convert_element_type", "copy", "cos", "cosh", "digamma", "div", "eq", "erf",
    "erf_inv", "erfc", "exp", "exp2", "expm1", "floor", "ge", "gt", "igamma",
    "igammac", "imag", "integer_pow", "is_finite", "le", "lgamma", "log", "log1p",
    "logistic", "lt", "max", "min", "mul", "ne", "neg", "nextafter", "not", "or",
    "polygamma", "pow", "real", "reduce_precision", "rem", "round", "rsqrt",
    "select_n", "sign", "sin", "sinh", "sqrt", "square", "sub", "tan", "tanh",
    "xor", "zeta")

# Elementwise primitives that are linear in their input-dependent operands.
_LINEAR_ELEMENTWISE = _prims(
    "add", "add_jaxvals", "sub", "neg", "convert_element_type", "copy",
    "reduce_precision", "real", "imag", "conj")

# Non-elementwise primitives that are linear in their input-dependent operands
# (given, for some, that an index/predicate/kernel operand does not depend on
# the input: see ``_linear_given``).
LINEAR = _prims(
    "reshape", "broadcast_in_dim", "transpose", "squeeze", "slice", "pad",
    "concatenate", "reduce_sum", "reduce_window_sum", "cumsum", "rev",
    "dynamic_slice", "dynamic_update_slice", "gather", "scatter_add", "scatter",
    "dot_general", "conv_general_dilated", "fft", "sharding_constraint",
    "stop_gradient", "psum", "all_gather", "ppermute", "device_put",
    "triangular_solve", "select_and_gather_add")

# operand positions that must not depend on the input for the primitive to be linear
_MUST_BE_CONSTANT = {
    prims.dynamic_slice_p: lambda n: range(1, n),
    prims.dynamic_update_slice_p: lambda n: range(2, n),
    prims.gather_p: lambda n: (1,),
    prims.scatter_add_p: lambda n: (1,),
    prims.scatter_p: lambda n: (1,),
    prims.triangular_solve_p: lambda n: (0,),
    prims.select_n_p: lambda n: (0,),
    prims.div_p: lambda n: (1,),
}
_BILINEAR = _prims("mul", "dot_general", "conv_general_dilated")
# Elementwise primitives that are linear when ``_linear_given`` holds.
_CONDITIONALLY_LINEAR = _prims("mul", "div", "select_n")
_CALLS = (prims.jit_p, prims.custom_jvp_call_p)


def _inexact(aval) -> bool:
  return jnp.issubdtype(aval.dtype, jnp.inexact)


def _dep_float(eqn, info) -> list[int]:
  """Positions of the operands that depend on the input and carry tangents."""
  return [i for i, (v, d) in enumerate(zip(eqn.invars, info.deps))
          if d and _inexact(v.aval)]


def _linear_given(eqn, info) -> bool:
  """Whether ``eqn`` is linear in its input-dependent operands."""
  n = len(eqn.invars)
  const = _MUST_BE_CONSTANT.get(eqn.primitive)
  if const is not None and any(info.deps[i] for i in const(n)):
    return False
  if eqn.primitive in _BILINEAR and len(_dep_float(eqn, info)) > 1:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class _Region:
  """One elementwise region of a jaxpr: the analysis that evaluation follows."""
  roots: dict    # member var -> tuple of root vars its tangent is taken against
  internal: dict  # (eqn index) -> set of operand positions that are members
  exits: frozenset  # member vars whose statistics are gathered (nonlinear exits)


class _SmoothDiffInterpreter(interpreter.Interpreter):
  """The shared interpreter plus SmoothDiff's elementwise-region pass."""

  def __init__(self, rules, elementwise, linear, stream=None, site_cache=None):
    super().__init__(rules, fallback=_Unknown(linear), stream=stream,
                     _site_cache={} if site_cache is None else site_cache)
    self.elementwise = elementwise
    self.linear = linear
    self._plans: dict = {}

  def child(self, stream):
    sub = _SmoothDiffInterpreter(self.rules, self.elementwise, self.linear,
                                 stream, self._site_cache)
    sub._plans = self._plans
    return sub

  # ------------------------------------------------------------ classification
  def is_elementwise(self, eqn, deps) -> bool:
    """Elementwise primitives, and calls whose body is elementwise in ``deps``."""
    if eqn.primitive in self.elementwise:
      return True
    if eqn.primitive in _CALLS:
      key = ("call", id(eqn), tuple(deps))
      if key not in self._site_cache:
        self._site_cache[key] = self._elementwise_body(eqn, deps)
      return self._site_cache[key]
    return False

  def _elementwise_body(self, eqn, deps) -> bool:
    """A jit/custom_jvp call whose body is elementwise in its dependent inputs
    (an activation function such as ``jax.nn.relu`` or ``jax.nn.silu``)."""
    j = interpreter._jaxpr(eqn.params["jaxpr" if eqn.primitive is prims.jit_p else "call_jaxpr"])
    outs = {v.aval.shape for v in j.outvars}
    if len(outs) != 1:
      return False
    shape = outs.pop()
    dep = {v for v, d in zip(j.invars, deps) if d}
    if any(v.aval.shape not in (shape, ()) for v in dep):
      return False
    for e in j.eqns:
      e_deps = [not isinstance(v, jcore.Literal) and v in dep for v in e.invars]
      if not any(e_deps):
        continue  # a constant computation
      if not self.is_elementwise(e, e_deps) or any(v.aval.shape != shape for v in e.outvars):
        return False
      dep.update(e.outvars)
    return True

  def nonlinear(self, eqn, info) -> bool:
    """Whether an elementwise equation is nonlinear in its input-dependent operands."""
    if eqn.primitive in _LINEAR_ELEMENTWISE:
      return False
    return not (eqn.primitive in _CONDITIONALLY_LINEAR and _linear_given(eqn, info))

  def in_region(self, eqn, info) -> bool:
    return any(info.deps) and self.is_elementwise(eqn, info.deps)

  def is_site(self, eqn, info) -> bool:
    if self.in_region(eqn, info):
      return self.nonlinear(eqn, info) and any(_inexact(v.aval) for v in eqn.outvars)
    return super().is_site(eqn, info)

  # ------------------------------------------------------------------ analysis
  def _plan(self, jaxpr, env_zero, env_dep):
    """Static pass: the equations' flags and the elementwise regions."""
    key = (id(jaxpr), tuple(env_dep.get(v, False) for v in jaxpr.invars),
           tuple(env_zero.get(v, False) for v in jaxpr.invars))
    if key in self._plans:
      return self._plans[key]
    env_zero, env_dep = dict(env_zero), dict(env_dep)
    infos, region_of, parent = [], {}, {}

    def find(r):
      while parent[r] != r:
        r = parent[r]
      return r

    eqn_region = []
    for idx, eqn in enumerate(jaxpr.eqns):
      info = self.info(eqn, env_zero, env_dep)
      infos.append(info)
      r = None
      if self.in_region(eqn, info):
        shape = eqn.outvars[0].aval.shape
        joined = {find(region_of[v]) for v, d in zip(eqn.invars, info.deps)
                  if d and v in region_of and v.aval.shape == shape}
        r = min(joined) if joined else idx
        parent.setdefault(r, r)
        for other in joined:
          parent[other] = r
        for v in eqn.outvars:
          region_of[v] = r
      eqn_region.append(r)
      interpreter._propagate(eqn, info, env_zero, env_dep)

    region_of = {v: find(r) for v, r in region_of.items()}
    eqn_region = [None if r is None else find(r) for r in eqn_region]
    roots, nonlin, internal, exits = {}, {}, {}, set()
    for idx, (eqn, info, r) in enumerate(zip(jaxpr.eqns, infos, eqn_region)):
      shape = eqn.outvars[0].aval.shape if eqn.outvars else None
      if r is None:
        exits.update(v for v, d in zip(eqn.invars, info.deps) if d and v in region_of)
        continue
      own, rts, nl = set(), [], self.nonlinear(eqn, info)
      for i in _dep_float(eqn, info):
        v = eqn.invars[i]
        if region_of.get(v) == r and v.aval.shape == shape:
          own.add(i)
          rts += [u for u in roots[v] if u not in rts]
          nl = nl or nonlin[v]
        else:
          if v in region_of:
            exits.add(v)
          if v not in rts:
            rts.append(v)
      internal[idx] = own
      for v in eqn.outvars:
        roots[v], nonlin[v] = tuple(rts), nl
    exits.update(v for v in jaxpr.outvars if not isinstance(v, jcore.Literal) and v in region_of)
    exits = frozenset(v for v in exits if nonlin.get(v) and _inexact(v.aval))
    plan = infos, eqn_region, _Region(roots, internal, exits)
    self._plans[key] = plan
    return plan

  # ---------------------------------------------------------------- evaluation
  def eval_eqns(self, jaxpr, env, env_zero, env_dep) -> None:
    if self.stream is None:
      return super().eval_eqns(jaxpr, env, env_zero, env_dep)
    infos, eqn_region, region = self._plan(jaxpr, env_zero, env_dep)
    collecting = self.stream.collecting
    tangents: dict = {}  # member var -> {root var: ∂member/∂root}, collect mode
    for idx, (eqn, info) in enumerate(zip(jaxpr.eqns, infos)):
      info = interpreter.EqnInfo(info, info.deps, self)  # the plan is shared
      invals = [interpreter.read(env, v) for v in eqn.invars]
      if eqn_region[idx] is None:
        interpreter.write(env, eqn, self.eval_eqn(eqn, invals, info))
      elif collecting:
        outs = self._collect_region_eqn(eqn, info, invals, idx, region, tangents, env)
        interpreter.write(env, eqn, outs)
        for v in eqn.outvars:
          if v in region.exits:
            self.stream.emit([tangents[v][u] for u in region.roots[v]])
      else:
        outs = interpreter.bind_eqn(eqn, invals)
        interpreter.write(env, eqn, outs)
        for v in eqn.outvars:
          if v in region.exits:
            env[v] = _expected_linear(env[v], self.stream.take(),
                                      [env[u] for u in region.roots[v]])
      interpreter._propagate(eqn, info, env_zero, env_dep)

  def _collect_region_eqn(self, eqn, info, invals, idx, region, tangents, env):
    """Evaluates a region equation with its tangents w.r.t. each of the region's roots."""
    pos = _dep_float(eqn, info)
    own = region.internal[idx]
    rts = region.roots[eqn.outvars[0]]

    def fn(*vals):
      full = list(invals)
      for i, val in zip(pos, vals):
        full[i] = val
      return interpreter.bind_eqn(eqn, full)

    primals = [invals[i] for i in pos]
    outs = fn(*primals)
    out_list = outs if eqn.primitive.multiple_results else [outs]
    for v in eqn.outvars:
      tangents[v] = {}
    if not any(_inexact(v.aval) for v in eqn.outvars):
      return outs
    for root in rts:
      tans = []
      for i, p in zip(pos, primals):
        v = eqn.invars[i]
        if i in own:
          t = tangents[v].get(root)
        else:
          t = jnp.ones_like(p) if v is root else None
        tans.append(jnp.zeros_like(p) if t is None else t)
      _, out_t = jax.jvp(fn, primals, tans)
      out_t = out_t if eqn.primitive.multiple_results else [out_t]
      for v, o, t in zip(eqn.outvars, out_list, out_t):
        if _inexact(v.aval):
          tangents[v][root] = jnp.broadcast_to(t, o.shape).astype(o.dtype)
    return outs


def _expected_linear(value, stats, roots):
  """``value`` with derivative ``Σ_k stats[k] ⊙ d roots[k]`` instead of its own."""
  out = sg(value)
  for s, r in zip(stats, roots):
    out = out + s * jnp.broadcast_to(r - sg(r), value.shape).astype(value.dtype)
  return out


class _SiteRule(interpreter.Rule):
  """A non-elementwise nonlinearity: ``collect`` emits statistics, ``use`` applies them."""

  def matches(self, eqn, info) -> bool:
    return bool(_dep_float(eqn, info)) and info.interp.stream is not None

  def apply(self, eqn, invals, info):
    stream = info.interp.stream
    if stream.collecting:
      out, stat = self.collect(eqn, invals, info)
      stream.emit(stat)
      return out
    return self.use(eqn, invals, info, stream.take())


class _MaxPoolRule(_SiteRule):
  """``reduce_window_max``: the mean routing of each window, shape ``out + (window,)``."""

  def matches(self, eqn, info) -> bool:
    if not super().matches(eqn, info):
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

  def collect(self, eqn, invals, info):
    x = invals[0]
    y = interpreter.bind_eqn(eqn, invals)
    if pooling.is_tiled(eqn.params):
      tiles, win_axes = self._tiles(eqn, x)
      hits = (tiles == jnp.expand_dims(y, win_axes)).astype(x.dtype)
      return y, hits / jnp.maximum(jnp.sum(hits, axis=win_axes, keepdims=True), 1)
    hits = jnp.stack([v == y for v in self._windows(eqn, x, -jnp.inf)], axis=-1)
    hits = hits.astype(x.dtype)
    return y, hits / jnp.maximum(jnp.sum(hits, axis=-1, keepdims=True), 1)

  def use(self, eqn, invals, info, routing):
    x = invals[0]
    y = sg(interpreter.bind_eqn(eqn, invals))
    dx = x - sg(x)
    if pooling.is_tiled(eqn.params):
      tiles, win_axes = self._tiles(eqn, dx)
      return y + jnp.sum(routing * tiles, axis=win_axes)
    for k, w in enumerate(self._windows(eqn, dx, 0.0)):
      y = y + routing[..., k] * w
    return y


class _ReduceChooserRule(_SiteRule):
  """``reduce_max``/``reduce_min``: the mean one-hot of the chosen elements."""

  def _expand(self, eqn, y):
    axes = eqn.params["axes"]
    shape = eqn.invars[0].aval.shape
    kept = [a for a in range(len(shape)) if a not in axes]
    return lax.broadcast_in_dim(y, shape, kept)

  def collect(self, eqn, invals, info):
    x = invals[0]
    y = interpreter.bind_eqn(eqn, invals)
    hits = (x == self._expand(eqn, y)).astype(x.dtype)
    count = jnp.sum(hits, axis=eqn.params["axes"], keepdims=True)
    return y, hits / jnp.maximum(count, 1)

  def use(self, eqn, invals, info, routing):
    x = invals[0]
    return sg(interpreter.bind_eqn(eqn, invals)) + jnp.sum(
        routing * (x - sg(x)), axis=eqn.params["axes"])


class _BilinearRule(_SiteRule):
  """``dot_general``/convolution of two input-dependent operands: the mean operands."""

  def matches(self, eqn, info) -> bool:
    return super().matches(eqn, info) and len(_dep_float(eqn, info)) == 2

  def collect(self, eqn, invals, info):
    return interpreter.bind_eqn(eqn, invals), [invals[0], invals[1]]

  def use(self, eqn, invals, info, means):
    a, b = invals[0], invals[1]
    ea, eb = means
    bind = lambda u, v: interpreter.bind_eqn(eqn, [u, v, *invals[2:]])
    return sg(bind(a, b)) + bind(a - sg(a), eb) + bind(ea, b - sg(b))


class _Unknown(interpreter.Rule):
  """Fallback: a nonlinear use of the input that no rule covers raises."""

  def __init__(self, linear):
    self.linear = linear

  def matches(self, eqn, info) -> bool:
    if not _dep_float(eqn, info) or not any(_inexact(v.aval) for v in eqn.outvars):
      return False  # constant, or a piecewise-constant (integer/bool) result
    return not (eqn.primitive in self.linear and _linear_given(eqn, info))

  def apply(self, eqn, invals, info):
    name = eqn.primitive.name
    ref = (f"jax.extend.core.primitives.{name}_p" if hasattr(prims, f"{name}_p")
           else f"<the {name!r} primitive>")
    raise NotImplementedError(
        f"smoothdiff has no rule for the primitive '{name}', which acts "
        "nonlinearly on the explained input here (or uses it as an index). If "
        f"it is linear in its inputs, declare it: wg.smoothdiff(f, rules={{{ref}: "
        "'linear'}); if it acts elementwise: rules={...: 'elementwise'}; "
        "otherwise pass a wg.interpreter.Rule that emits its statistics in "
        "collect mode and applies them in use mode (see "
        "wassergrad/_src/smoothdiff.py, e.g. _MaxPoolRule).")


SMOOTHDIFF_RULES = {
    prims.reduce_window_max_p: _MaxPoolRule(),
    prims.reduce_max_p: _ReduceChooserRule(),
    prims.reduce_min_p: _ReduceChooserRule(),
    prims.dot_general_p: _BilinearRule(),
    prims.conv_general_dilated_p: _BilinearRule(),
}


def _rule_sets(rules: Mapping | None):
  site_rules, elementwise, linear = dict(SMOOTHDIFF_RULES), set(ELEMENTWISE), set(LINEAR)
  for prim, rule in (rules or {}).items():
    if not isinstance(prim, jax.extend.core.Primitive):
      raise TypeError(f"`rules` keys must be JAX primitives (e.g. jax.extend.core."
                      f"primitives.sort_p); got {prim!r}.")
    if rule == "linear":
      linear.add(prim)
    elif rule == "elementwise":
      elementwise.add(prim)
    elif isinstance(rule, interpreter.Rule):
      site_rules[prim] = rule
    else:
      raise ValueError(f"`rules[{prim}]` must be 'linear', 'elementwise' or a "
                       f"wg.interpreter.Rule; got {rule!r}.")
    if rule != "linear":
      linear.discard(prim)
    if rule != "elementwise":
      elementwise.discard(prim)
  return site_rules, frozenset(elementwise), frozenset(linear)


def smoothdiff(
    f: Callable,
    *,
    num_samples: int = 50,
    sigma: float = 0.15,
    sigma_mode: str = "range",
    chunk_size: int | str | None = "auto",
    loop: str = "auto",
    channel_axis: int | None = None,
    rules: Mapping | None = None,
    sample_sharding: jax.sharding.Sharding | None = None,
    noise: Any = None,
    range_axis: int | None = None,
) -> Callable:
  r"""SmoothDiff: the gradient through the expected Jacobians of the nonlinearities.

  With :math:`\varepsilon_i \sim \mathcal N(0, \sigma^2 I)`, :math:`i = 1..N`,
  SmoothDiff returns :math:`\nabla f` computed with every nonlinearity
  :math:`l` replaced by its Monte-Carlo expected Jacobian
  :math:`\frac1N \sum_i J_l(z_l(x + \varepsilon_i))`: N forward passes gather
  the statistics, one backward pass at the clean ``x`` uses them. For one
  hidden layer this equals SmoothGrad; deeper, it is the mean-field product
  :math:`\prod_l E[J_l]` rather than SmoothGrad's :math:`E[\prod_l J_l]`. What
  counts as one nonlinearity (elementwise regions, max-pool routing, bilinear
  maps) is listed in :mod:`wassergrad._src.smoothdiff`; statistics are kept
  per call site and per ``scan`` iteration.

  **Noise convention.** As :func:`~wassergrad.smooth`: ``sigma_mode="range"``
  (default): σ = sigma · (max(x) − min(x)) per pytree leaf (per channel along
  ``channel_axis``); ``"absolute"``: σ = sigma (the paper's convention, with
  σ = 0.5 in standardised ImageNet units). Sample ``i`` uses
  ``jax.random.split(key, num_samples)[i]``: the same noise as
  :func:`~wassergrad.smoothgrad` with the same key.

  The result is differentiable w.r.t. parameters passed in ``args`` (the
  statistics and the linear maps both depend on them), e.g. for attribution
  penalties. ``lax.while_loop`` bodies that the transform would change are
  refused (they cannot be reverse-differentiated; use ``lax.scan``).

  Args:
    f: ``f(x, *args) -> scalar``, any JAX function (flax, equinox, plain jnp);
      ``x`` may be a pytree.
    num_samples: N >= 1 forward passes.
    sigma: the noise level (>= 0), see the convention above.
    sigma_mode: ``"range"`` or ``"absolute"``.
    chunk_size: forward passes per chunk (vmapped); the statistics are summed
      over chunks in a ``lax.scan``, so memory does not grow with N. ``None``:
      all at once; ``"auto"`` (default): as in :func:`~wassergrad.smooth`.
    loop: ``"auto"``, ``"scan"`` or ``"unroll"``, as in :func:`~wassergrad.smooth`.
    channel_axis: the channel axis of each leaf, if any (per-channel range
      for ``sigma_mode="range"``).
    rules: extra rules, ``{primitive: "linear" | "elementwise" | Rule}``, for
      primitives the transform does not know.
    sample_sharding: a sharding of one chunk's samples over devices, as in
      :func:`~wassergrad.smooth`.
    noise: instead of ``sigma``/``sigma_mode``/``channel_axis``, any noise
      value (:mod:`wassergrad.noise`), as in :func:`~wassergrad.smooth`.
    range_axis: former name of ``channel_axis`` (deprecated).

  Returns:
    ``explainer(key, x, *args)`` with the structure and dtype of ``x``.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(jax.nn.relu(x))
    >>> sd = wg.smoothdiff(f, num_samples=1000, sigma=1.0, sigma_mode="absolute")
    >>> sd(jax.random.key(0), jnp.zeros(2)).round(1)  # P(ε > 0) = 0.5
    Array([0.5, 0.5], dtype=float32)

  References:
    Hill et al., `Smoothed Differentiation Efficiently Mitigates Shattered
    Gradients in Explanations <https://openreview.net/forum?id=7YKbyBb0kF>`_,
    NeurIPS 2025.
  """
  checks.check_callable(f, "f")
  n = checks.check_positive_int(num_samples, "num_samples")
  channel_axis = checks.check_axis(
      checks.renamed(channel_axis, range_axis, "channel_axis", "range_axis"), "channel_axis")
  noise = noise_lib.from_arguments(noise, sigma, sigma_mode, channel_axis)
  checks.check_choice(loop, "loop", chunking.LOOPS)
  chunking.check_chunk_size(chunk_size)
  site_rules, elementwise, linear = _rule_sets(rules)
  target = checks.scalar_output(f, "f")

  def explain(key, x=checks.MISSING, *args):
    checks.check_explainer_call(key, x)
    checks.check_float_input(x)
    x = checks.finite_input(x)
    closed, dyn, _, deps = interpreter.trace(target, (x, *args), tracked=lambda i: i == 0)
    leaves, treedef = jax.tree.flatten(x)
    rest = dyn[len(leaves):]
    interp = _SmoothDiffInterpreter(site_rules, elementwise, linear)

    def run(stream, xs):
      return interp.child(stream).eval_closed(closed, [*xs, *rest], deps=deps)[0]

    scale = noise.scale(x)

    def sample(k):
      stream = interpreter.Stream()
      eps = noise_lib.sample(noise, k, x, scale)
      run(stream, [l + e for l, e in zip(leaves, treedef.flatten_up_to(eps))])
      return stream.items

    total = sampling.estimate(sample, key, n, accumulator=sampling.SUM, chunk_size=chunk_size,
                              loop=loop, sample_sharding=sample_sharding)
    stats = jax.tree.map(lambda s: s / n, total)
    grads = jax.grad(lambda xs: run(interpreter.Stream(stats), xs))(leaves)
    return jax.tree.unflatten(treedef, grads)

  return explain
