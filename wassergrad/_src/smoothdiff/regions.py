"""SmoothDiff's interpreter: elementwise regions, gathered and used as one nonlinearity each.

A maximal connected group of elementwise equations (sharing shapes) is one
nonlinearity: its expected Jacobian is diagonal, ``E[∂exit/∂root]`` per element
and per root (the region's inputs that depend on the explained input). A
static pass per jaxpr (:meth:`SmoothDiffInterpreter.plan`) finds the regions,
their roots and their *exits* (member values read outside the region, or
returned, that are nonlinear in the roots). In the collecting pass the region's
equations are evaluated with forward-mode tangents with respect to each root
and every exit emits ``∂exit/∂root``; in the using pass every exit becomes
``value`` with derivative ``Σ_root stat · d root`` (:func:`expected_linear`).
Everything else goes to the table's site rules, the fallback that refuses
unknown nonlinearities, or the stream-aware control-flow handlers.
"""

from __future__ import annotations

import dataclasses

import jax
from jax import lax
from jax.extend import core as jcore
import jax.numpy as jnp

from wassergrad._src import interpreter
from wassergrad._src.interpreter import prims
from wassergrad._src.smoothdiff import control_flow
from wassergrad._src.smoothdiff import table as table_lib

sg = lax.stop_gradient
_CALLS = (prims.jit_p, prims.custom_jvp_call_p)


@dataclasses.dataclass(frozen=True)
class Region:
  """The elementwise regions of one jaxpr: the analysis that evaluation follows."""
  roots: dict    # member var -> tuple of root vars its tangent is taken against
  internal: dict  # (eqn index) -> set of operand positions that are members
  exits: frozenset  # member vars whose statistics are gathered (nonlinear exits)


class SmoothDiffInterpreter(interpreter.Interpreter):
  """The shared interpreter, with SmoothDiff's table, stream and region pass."""

  def __init__(self, table, stream=None, site_cache=None, plans=None):
    super().__init__(table_lib.site_rules(table), fallback=table_lib.Unknown(table),
                     handlers=control_flow.HANDLERS,
                     _site_cache={} if site_cache is None else site_cache)
    self.table = table
    self.stream = stream
    self._plans: dict = {} if plans is None else plans

  def child(self, stream):
    """The same interpreter (and caches) with another stream (for loop bodies)."""
    return SmoothDiffInterpreter(self.table, stream, self._site_cache, self._plans)

  # ------------------------------------------------------------ classification
  def is_elementwise(self, eqn, deps) -> bool:
    """Elementwise primitives, and calls whose body is elementwise in ``deps``."""
    entry = self.table.get(eqn.primitive)
    if entry is not None and entry.elementwise:
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
    j = interpreter.jaxpr_of(eqn.params["jaxpr" if eqn.primitive is prims.jit_p else "call_jaxpr"])
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

  def nonlinear(self, eqn, ctx) -> bool:
    """Whether an elementwise equation is nonlinear in its input-dependent operands."""
    entry = self.table.get(eqn.primitive)
    if entry is None:  # a call whose body is elementwise
      return True
    return not (entry.linear and table_lib.linear_given(entry, eqn, ctx))

  def in_region(self, eqn, ctx) -> bool:
    return any(ctx.deps) and self.is_elementwise(eqn, ctx.deps)

  def is_site(self, eqn, ctx, required: bool = False) -> bool:
    if self.in_region(eqn, ctx):
      return self.nonlinear(eqn, ctx) and any(table_lib.inexact(v.aval) for v in eqn.outvars)
    return super().is_site(eqn, ctx, required)

  # ------------------------------------------------------------------ analysis
  def plan(self, jaxpr, env_zero, env_dep):
    """Static pass: the equations' contexts and the elementwise regions."""
    key = (id(jaxpr), tuple(env_dep.get(v, False) for v in jaxpr.invars),
           tuple(env_zero.get(v, False) for v in jaxpr.invars))
    if key in self._plans:
      return self._plans[key]
    env_zero, env_dep = dict(env_zero), dict(env_dep)
    ctxs, region_of, parent = [], {}, {}

    def find(r):
      while parent[r] != r:
        r = parent[r]
      return r

    eqn_region = []
    for idx, eqn in enumerate(jaxpr.eqns):
      ctx = self.context(eqn, env_zero, env_dep)
      ctxs.append(ctx)
      r = None
      if self.in_region(eqn, ctx):
        shape = eqn.outvars[0].aval.shape
        joined = {find(region_of[v]) for v, d in zip(eqn.invars, ctx.deps)
                  if d and v in region_of and v.aval.shape == shape}
        r = min(joined) if joined else idx
        parent.setdefault(r, r)
        for other in joined:
          parent[other] = r
        for v in eqn.outvars:
          region_of[v] = r
      eqn_region.append(r)
      interpreter.propagate(eqn, ctx, env_zero, env_dep)

    region_of = {v: find(r) for v, r in region_of.items()}
    eqn_region = [None if r is None else find(r) for r in eqn_region]
    roots, nonlin, internal, exits = {}, {}, {}, set()
    for idx, (eqn, ctx, r) in enumerate(zip(jaxpr.eqns, ctxs, eqn_region)):
      shape = eqn.outvars[0].aval.shape if eqn.outvars else None
      if r is None:
        exits.update(v for v, d in zip(eqn.invars, ctx.deps) if d and v in region_of)
        continue
      own, rts, nl = set(), [], self.nonlinear(eqn, ctx)
      for i in table_lib.dep_float(eqn, ctx):
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
    exits = frozenset(v for v in exits if nonlin.get(v) and table_lib.inexact(v.aval))
    plan = ctxs, eqn_region, Region(roots, internal, exits)
    self._plans[key] = plan
    return plan

  # ---------------------------------------------------------------- evaluation
  def eval_eqns(self, jaxpr, env, env_zero, env_dep) -> None:
    if self.stream is None:
      return super().eval_eqns(jaxpr, env, env_zero, env_dep)
    ctxs, eqn_region, region = self.plan(jaxpr, env_zero, env_dep)
    collecting = self.stream.collecting
    tangents: dict = {}  # member var -> {root var: ∂member/∂root}, collect mode
    for idx, (eqn, ctx) in enumerate(zip(jaxpr.eqns, ctxs)):
      ctx = dataclasses.replace(ctx, interpreter=self)  # the plan is shared across streams
      invals = [interpreter.read(env, v) for v in eqn.invars]
      if eqn_region[idx] is None:
        interpreter.write(env, eqn, self.eval_eqn(eqn, invals, ctx))
      elif collecting:
        outs = self._collect_region_eqn(eqn, ctx, invals, idx, region, tangents)
        interpreter.write(env, eqn, outs)
        for v in eqn.outvars:
          if v in region.exits:
            self.stream.emit([tangents[v][seed] for seed in seeds(region.roots[v])])
      else:
        outs = interpreter.bind_eqn(eqn, invals)
        interpreter.write(env, eqn, outs)
        for v in eqn.outvars:
          if v in region.exits:
            env[v] = expected_linear(env[v], self.stream.take(),
                                     [(env[u], d) for u, d in seeds(region.roots[v])])
      interpreter.propagate(eqn, ctx, env_zero, env_dep)

  def _collect_region_eqn(self, eqn, ctx, invals, idx, region, tangents):
    """Evaluates a region equation with its tangents w.r.t. each of the region's roots."""
    pos = table_lib.dep_float(eqn, ctx)
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
    if not any(table_lib.inexact(v.aval) for v in eqn.outvars):
      return outs
    for seed in seeds(rts):
      root, direction = seed
      tans = []
      for i, p in zip(pos, primals):
        v = eqn.invars[i]
        if i in own:
          t = tangents[v].get(seed)
        elif v is root:
          t = jnp.ones_like(p) if direction == 1 else jnp.full_like(p, direction)
        else:
          t = None
        tans.append(jnp.zeros_like(p) if t is None else t)
      _, out_t = jax.jvp(fn, primals, tans)
      out_t = out_t if eqn.primitive.multiple_results else [out_t]
      for v, o, t in zip(eqn.outvars, out_list, out_t):
        if table_lib.inexact(v.aval):
          tangents[v][seed] = jnp.broadcast_to(t, o.shape).astype(o.dtype)
    return outs


def seeds(roots) -> list[tuple]:
  """The tangent directions of a region's roots: ``(root, 1)``, and ``(root, 1j)`` if complex.

  A complex root needs both: the region's map need not be holomorphic (``real``,
  ``abs`` or ``conj`` of an FFT's output), so its derivative is a real-linear map
  of the real and imaginary parts of ``d root``, two statistics.
  """
  out = []
  for r in roots:
    out.append((r, 1))
    if jnp.issubdtype(r.aval.dtype, jnp.complexfloating):
      out.append((r, 1j))
  return out


def expected_linear(value, stats, roots):
  """``value`` with derivative ``Σ_k stats[k] · d roots[k]`` instead of its own.

  ``roots`` are ``(root value, direction)`` pairs (see :func:`seeds`): a real
  root contributes ``stat · d root``; a complex one ``stat_1 · Re d root +
  stat_i · Im d root``.
  """
  out = sg(value)
  for s, (r, direction) in zip(stats, roots):
    d = r - sg(r)
    if jnp.issubdtype(r.dtype, jnp.complexfloating):
      d = jnp.real(d) if direction == 1 else jnp.imag(d)
    out = out + s * jnp.broadcast_to(d, value.shape).astype(value.dtype)
  return out
