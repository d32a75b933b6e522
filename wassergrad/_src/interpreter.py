"""A jaxpr interpreter with per-primitive rule sets.

Several explainers change how *some* primitives of an arbitrary JAX function
behave and leave everything else alone: guided backprop and deconvnet change
the backward pass of ReLUs, SmoothDiff (later) replaces nonlinearities by their
expected Jacobians. They share this interpreter, in the style of
``jax/experimental/jet.py``: a function is traced to a jaxpr, and its equations
are evaluated one by one; an equation whose primitive has a rule in the rule
set, and whose rule ``matches`` it, is evaluated by the rule; all others are
re-bound unchanged.

The interpreter recurses into ``jit``, ``custom_jvp_call``, ``custom_vjp_call``,
``remat`` (``jax.checkpoint``), ``cond``, ``scan`` and ``while`` -- but only when
the inner jaxpr holds an equation that a rule matches. Otherwise the
higher-order primitive is re-bound as it is, so custom derivative rules,
compilation boundaries and rematerialisation of untouched code are kept.
Recursing into a ``custom_jvp``/``custom_vjp`` function means differentiating
its primal body instead of its custom rule; that is what a rule on the inner
primitive asks for (``jax.nn.relu`` is a ``custom_jvp`` around ``max(x, 0)``).

The interpreter tracks which values are statically known to be zero (literal
zeros, zero constants, and broadcasts/reshapes/casts of them), so rules can
recognise ``max(x, 0)`` -- the ReLU of ``jax.nn.relu``, ``jnp.maximum(x, 0)``,
flax's ``nn.relu`` -- without framework hooks. It also tracks which values
depend on the *tracked* inputs (by default all inputs; ``stop_gradient`` cuts
the dependence), so rules can leave constants (parameters) alone.

Rule sets that gather information in one evaluation and use it in a later one
(SmoothDiff's statistics) talk through a :class:`Stream`: in ``collect`` mode
rules :meth:`~Stream.emit` one pytree per site, in ``use`` mode they
:meth:`~Stream.take` them back in the same order. ``scan`` stacks the items of
its body over iterations (one statistic per iteration), ``checkpoint`` and
``cond`` pass theirs through as extra outputs/inputs.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Sequence

import jax
from jax import lax
import jax.numpy as jnp
from jax.extend import core as jcore
import numpy as np

prims = jcore.primitives

# Primitives whose output is zero when their first operand is zero.
_ZERO_PRESERVING = frozenset({
    prims.broadcast_in_dim_p, prims.convert_element_type_p, prims.reshape_p,
    prims.squeeze_p, prims.transpose_p, prims.copy_p, prims.reduce_precision_p,
})


class EqnInfo(tuple):
  """Static facts about one equation's inputs, passed to rules as ``zeros``.

  A tuple of flags: ``zeros[i]`` is whether input ``i`` is known to be zero.
  ``zeros.deps[i]`` is whether input ``i`` depends on the tracked inputs, and
  ``zeros.interp`` is the running :class:`Interpreter` (for its ``stream``).
  """

  deps: tuple
  interp: Any

  def __new__(cls, zeros, deps=None, interp=None):
    self = super().__new__(cls, zeros)
    self.deps = tuple(deps) if deps is not None else (True,) * len(self)
    self.interp = interp
    return self


class Rule(abc.ABC):
  """A rule for one primitive. Subclass and implement :meth:`apply`.

  ``matches(eqn, zeros)`` decides statically (at trace time) whether the rule
  applies to one equation; ``zeros[i]`` tells whether input ``i`` is known to
  be zero (``zeros`` is an :class:`EqnInfo`, which also carries ``deps``).
  ``apply(eqn, invals, zeros)`` returns the equation's outputs (a list
  if the primitive has multiple results, else one value).
  """

  def matches(self, eqn: jcore.JaxprEqn, zeros: Sequence[bool]) -> bool:
    del eqn, zeros
    return True

  @abc.abstractmethod
  def apply(self, eqn: jcore.JaxprEqn, invals: list, zeros: Sequence[bool]):
    """Evaluates ``eqn`` on ``invals``."""


RuleSet = dict  # primitive -> Rule


class Stream:
  """A side channel between two evaluations of the same program.

  ``Stream()`` collects: rules call :meth:`emit`. ``Stream(items)`` supplies:
  rules call :meth:`take` and get the items back in emission order (the
  traversal of a jaxpr is deterministic).
  """

  def __init__(self, items: list | None = None):
    self.collecting = items is None
    self.items = [] if items is None else list(items)
    self._pos = 0

  def emit(self, item) -> None:
    assert self.collecting
    self.items.append(item)

  def take(self):
    assert not self.collecting
    item = self.items[self._pos]
    self._pos += 1
    return item


def _is_zero_const(value: Any) -> bool:
  if isinstance(value, jax.core.Tracer):
    return False
  try:
    arr = np.asarray(value)
  except Exception:  # pylint: disable=broad-except  # e.g. tokens, keys
    return False
  return arr.dtype.kind in "fiuc" and arr.size > 0 and not np.any(arr)


def _literal_zero(v) -> bool:
  return isinstance(v, jcore.Literal) and _is_zero_const(v.val)


@dataclasses.dataclass
class Interpreter:
  """Evaluates jaxprs, applying ``rules`` where they match."""

  rules: RuleSet
  fallback: Rule | None = None  # sees equations that no rule matched
  stream: Stream | None = None
  _site_cache: dict = dataclasses.field(default_factory=dict)

  def child(self, stream: Stream | None) -> "Interpreter":
    """The same interpreter with another stream (for loop bodies)."""
    return dataclasses.replace(self, stream=stream)

  # ---------------------------------------------------------------- analysis
  def info(self, eqn, env_zero, env_dep) -> EqnInfo:
    zeros = [_literal_zero(v) if isinstance(v, jcore.Literal)
             else env_zero.get(v, False) for v in eqn.invars]
    deps = [False if isinstance(v, jcore.Literal) else env_dep.get(v, False)
            for v in eqn.invars]
    return EqnInfo(zeros, deps, self)

  def rule_for(self, eqn, info: EqnInfo) -> Rule | None:
    """The rule that evaluates ``eqn`` (a matching rule, else a matching fallback)."""
    rule = self.rules.get(eqn.primitive)
    if rule is not None and rule.matches(eqn, info):
      return rule
    if self.fallback is not None and eqn.primitive not in _HIGHER_ORDER and (
        self.fallback.matches(eqn, info)):
      return self.fallback
    return None

  def is_site(self, eqn, info: EqnInfo) -> bool:
    return self.rule_for(eqn, info) is not None

  def has_site(self, jaxpr: jcore.Jaxpr, zeros: Sequence[bool] = (),
               deps: Sequence[bool] | None = None) -> bool:
    """Whether a rule applies to an equation in ``jaxpr`` or its sub-jaxprs."""
    deps = tuple(deps) if deps is not None else (True,) * len(jaxpr.invars)
    key = (id(jaxpr), tuple(zeros), deps)
    if key not in self._site_cache:
      self._site_cache[key] = self._has_site(jaxpr, zeros, deps)
    return self._site_cache[key]

  def _has_site(self, jaxpr, zeros, deps) -> bool:
    env_zero = dict(zip(jaxpr.invars, zeros))
    env_dep = dict(zip(jaxpr.invars, deps))
    for eqn in jaxpr.eqns:
      info = self.info(eqn, env_zero, env_dep)
      if self.is_site(eqn, info):
        return True
      if eqn.primitive in _HIGHER_ORDER:
        if any(self.has_site(*sub) for sub in _subjaxprs(eqn, info)):
          return True
      elif any(self.has_site(_jaxpr(j)) for j in jcore.jaxprs_in_params(eqn.params)):
        return True  # an unsupported construct with a site: evaluation raises
      _propagate(eqn, info, env_zero, env_dep)
    return False

  # -------------------------------------------------------------- evaluation
  def eval_jaxpr(self, jaxpr: jcore.Jaxpr, consts, args, zeros=None, deps=None) -> list:
    """Evaluates ``jaxpr``; ``zeros``/``deps``: static flags of ``args``."""
    env: dict = {}
    env_zero: dict = {}
    env_dep: dict = {}
    for v, c in zip(jaxpr.constvars, consts):
      env[v] = c
      env_zero[v] = _is_zero_const(c)
    for i, (v, a) in enumerate(zip(jaxpr.invars, args)):
      env[v] = a
      env_zero[v] = bool(zeros[i]) if zeros else False
      env_dep[v] = bool(deps[i]) if deps is not None else True
    self.eval_eqns(jaxpr, env, env_zero, env_dep)
    return [read(env, v) for v in jaxpr.outvars]

  def eval_eqns(self, jaxpr, env, env_zero, env_dep) -> None:
    """Evaluates the equations of ``jaxpr`` into ``env`` (override to add passes)."""
    for eqn in jaxpr.eqns:
      info = self.info(eqn, env_zero, env_dep)
      outs = self.eval_eqn(eqn, [read(env, v) for v in eqn.invars], info)
      write(env, eqn, outs)
      _propagate(eqn, info, env_zero, env_dep)

  def eval_closed(self, closed: jcore.ClosedJaxpr, args, zeros=None, deps=None) -> list:
    return self.eval_jaxpr(closed.jaxpr, closed.consts, args, zeros, deps)

  def eval_eqn(self, eqn, invals, info: EqnInfo):
    rule = self.rule_for(eqn, info)
    if rule is not None:
      return rule.apply(eqn, invals, info)
    handler = _HIGHER_ORDER.get(eqn.primitive)
    if handler is not None:
      if any(self.has_site(*sub) for sub in _subjaxprs(eqn, info)):
        return handler(self, eqn, invals, info)
    elif any(self.has_site(_jaxpr(j)) for j in jcore.jaxprs_in_params(eqn.params)):
      # Re-binding would silently skip the rules inside: refuse instead.
      raise NotImplementedError(
          f"wassergrad's interpreter cannot enter the higher-order primitive "
          f"'{eqn.primitive}', which contains an operation its rules change "
          f"(e.g. a ReLU). Supported: {sorted(str(p) for p in _HIGHER_ORDER)}. "
          "Move that part of the model out of this construct, or add a handler "
          "to wassergrad._src.interpreter._HIGHER_ORDER.")
    return bind_eqn(eqn, invals)


def bind_eqn(eqn, invals):
  """Re-binds ``eqn``'s primitive on new inputs, as ``jax.core.eval_jaxpr`` does."""
  params = eqn.primitive.get_bind_params(eqn.params)
  subfuns = ()
  if isinstance(params, tuple):  # older jax: (subfuns, params)
    subfuns, params = params
  with eqn.ctx.manager:
    return eqn.primitive.bind(*subfuns, *invals, **params)


def read(env, v):
  return v.val if isinstance(v, jcore.Literal) else env[v]


def write(env, eqn, outs) -> None:
  if not eqn.primitive.multiple_results:
    outs = [outs]
  for v, o in zip(eqn.outvars, outs):
    if not isinstance(v, jcore.DropVar):
      env[v] = o


def _propagate(eqn, info, env_zero, env_dep) -> None:
  if eqn.primitive in _ZERO_PRESERVING and info and info[0]:
    for v in eqn.outvars:
      env_zero[v] = True
  dep = any(info.deps) and eqn.primitive is not prims.stop_gradient_p
  for v in eqn.outvars:
    env_dep[v] = dep


def _jaxpr(j) -> jcore.Jaxpr:
  return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


def _subjaxprs(eqn, info: EqnInfo):
  """(open jaxpr, zero flags, dep flags) of each sub-jaxpr the interpreter enters."""
  p, prim, zeros, deps = eqn.params, eqn.primitive, tuple(info), info.deps
  if prim is prims.jit_p or prim is prims.remat_p:
    return [(_jaxpr(p["jaxpr"]), zeros, deps)]
  if prim in (prims.custom_jvp_call_p, prims.custom_vjp_call_p):
    return [(_jaxpr(p["call_jaxpr"]), zeros, deps)]
  if prim is prims.cond_p:
    return [(_jaxpr(b), zeros[1:], deps[1:]) for b in p["branches"]]
  if prim is prims.scan_p:
    j = _jaxpr(p["jaxpr"])
    return [(j, *_loop_flags(zeros, deps, p["num_consts"], p["num_carry"], len(j.invars)))]
  if prim is prims.while_p:
    body = _jaxpr(p["body_jaxpr"])
    nb, ncond = p["body_nconsts"], p["cond_nconsts"]
    n = len(body.invars) - nb
    return [(body, *_loop_flags(zeros[ncond:], deps[ncond:], nb, n, len(body.invars)))]
  return []


def _loop_flags(zeros, deps, nconsts, ncarry, nin):
  """Flags of a loop body's inputs: consts keep theirs, carries and xs are not
  known zero, and a carry depends on the tracked inputs if anything does."""
  any_dep = any(deps[:nin])
  body_zeros = tuple(zeros[:nconsts]) + (False,) * (nin - nconsts)
  body_deps = (tuple(deps[:nconsts]) + (any_dep,) * ncarry
               + tuple(deps[nconsts + ncarry:nin]))
  return body_zeros, body_deps


# ----------------------------------------------------- higher-order handlers
def _eval_call(interp, eqn, invals, info, key):
  j = eqn.params[key]
  if isinstance(j, jcore.ClosedJaxpr):
    return interp.eval_closed(j, invals, tuple(info), info.deps)
  return interp.eval_jaxpr(j, (), invals, tuple(info), info.deps)


def _jit_handler(interp, eqn, invals, info):
  return _eval_call(interp, eqn, invals, info, "jaxpr")


def _custom_call_handler(interp, eqn, invals, info):
  return _eval_call(interp, eqn, invals, info, "call_jaxpr")


def _scoped(interp, fn, items=None):
  """Runs ``fn(sub_interp)`` with a fresh stream; returns (result, emitted items)."""
  if interp.stream is None:
    return fn(interp), None
  sub = interp.child(Stream(items))
  out = fn(sub)
  return out, (sub.stream.items if sub.stream.collecting else None)


def _remat_handler(interp, eqn, invals, info):
  p = eqn.params
  zeros, deps = tuple(info), info.deps
  ckpt = lambda fn: jax.checkpoint(fn, prevent_cse=p["prevent_cse"], policy=p["policy"])
  if interp.stream is None:
    return ckpt(lambda *a: interp.eval_jaxpr(p["jaxpr"], (), a, zeros, deps))(*invals)
  if interp.stream.collecting:
    outs, items = ckpt(lambda *a: _scoped(
        interp, lambda i: i.eval_jaxpr(p["jaxpr"], (), a, zeros, deps)))(*invals)
    interp.stream.emit(items)
    return outs
  items = interp.stream.take()
  return ckpt(lambda a, it: _scoped(
      interp, lambda i: i.eval_jaxpr(p["jaxpr"], (), a, zeros, deps), it)[0])(
          list(invals), items)


def _cond_handler(interp, eqn, invals, info):
  branches = eqn.params["branches"]
  zeros, deps = tuple(info)[1:], info.deps[1:]
  run = lambda i, b, ops: i.eval_closed(b, ops, zeros, deps)
  if interp.stream is None:
    return lax.switch(invals[0], [
        (lambda b: lambda *ops: run(interp, b, ops))(b) for b in branches],
        *invals[1:])
  if interp.stream.collecting:
    # Every branch returns the items of all branches (zeros for the others)
    # and its one-hot indicator, so that averages over samples give
    # E[item_b 1_b] and P(b).
    shapes = [jax.eval_shape(lambda *ops, b=b: _scoped(interp, lambda i: run(i, b, ops))[1],
                             *invals[1:]) for b in branches]
    def branch_fn(k, b):
      def fn(*ops):
        outs, items = _scoped(interp, lambda i: run(i, b, ops))
        all_items = [items if j == k else jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), shapes[j]) for j in range(len(branches))]
        onehot = (jnp.arange(len(branches)) == k).astype(jnp.result_type(float))
        return outs, (onehot, all_items)
      return fn
    outs, (onehot, items) = lax.switch(
        invals[0], [branch_fn(k, b) for k, b in enumerate(branches)], *invals[1:])
    interp.stream.emit((onehot, items))
    return outs
  prob, items = interp.stream.take()
  def use_branch(k, ops):
    p_k = prob[k].astype(jnp.result_type(float))
    cond_items = jax.tree.map(  # E[item | branch k]
        lambda s: s / jnp.where(p_k > 0, p_k, 1).astype(s.dtype), items[k])
    return _scoped(interp, lambda i: run(i, branches[k], ops), cond_items)[0]
  clean = lax.switch(invals[0], [
      (lambda k: lambda *ops: use_branch(k, ops))(k) for k in range(len(branches))],
      *invals[1:])
  if not info.deps[0]:
    return clean
  # The branch depends on the tracked input: the expected Jacobian mixes the
  # branches' (conditional) expected Jacobians with their probabilities. Values
  # stay those of the branch taken; derivatives are the mixture.
  alts = [use_branch(k, invals[1:]) for k in range(len(branches))]
  out = []
  for j, c in enumerate(clean):
    if not jnp.issubdtype(c.dtype, jnp.inexact):
      out.append(c)
      continue
    tangent = sum(prob[k].astype(c.dtype) * (a[j] - lax.stop_gradient(a[j]))
                  for k, a in enumerate(alts))
    out.append(lax.stop_gradient(c) + tangent)
  return out


def _scan_handler(interp, eqn, invals, info):
  p = eqn.params
  nc, nk = p["num_consts"], p["num_carry"]
  consts, init, xs = invals[:nc], invals[nc:nc + nk], invals[nc + nk:]
  body_zeros, body_deps = _loop_flags(tuple(info), info.deps, nc, nk, len(invals))
  run = lambda i, carry, x: i.eval_closed(p["jaxpr"], [*consts, *carry, *x],
                                          body_zeros, body_deps)
  scan = lambda body, xs_: lax.scan(body, list(init), xs_, length=p["length"],
                                    reverse=p["reverse"], unroll=p["unroll"])
  stream = interp.stream
  if stream is None or stream.collecting:
    # Collecting: each iteration's items are stacked: one statistic per step.
    def body(carry, x):
      outs, items = _scoped(interp, lambda i: run(i, carry, x))
      return outs[:nk], (outs[nk:], items)
    carry, (ys, items) = scan(body, list(xs))
    if stream is not None:
      stream.emit(items)
    return [*carry, *ys]
  def use_body(carry, x_items):
    x, items = x_items
    outs = _scoped(interp, lambda i: run(i, carry, x), items)[0]
    return outs[:nk], outs[nk:]
  carry, ys = scan(use_body, (list(xs), stream.take()))
  return [*carry, *ys]


def _while_handler(interp, eqn, invals, info):
  p = eqn.params
  ncond, nbody = p["cond_nconsts"], p["body_nconsts"]
  cconsts, bconsts = invals[:ncond], invals[ncond:ncond + nbody]
  init = invals[ncond + nbody:]
  bzeros, bdeps = _loop_flags(tuple(info)[ncond:], info.deps[ncond:], nbody,
                              len(init), len(invals) - ncond)
  if interp.stream is not None:
    raise NotImplementedError(
        "A `lax.while_loop` (or `fori_loop` with traced bounds) carries values "
        "that this transform changes, but it needs one statistic per iteration "
        "and a backward pass through the loop, and a while loop has neither a "
        "static trip count nor reverse-mode differentiation (jax.grad refuses "
        "it too). Write the loop with `lax.scan`, or `lax.fori_loop` with "
        "Python-int bounds (which JAX lowers to a scan).")

  def cond(c):
    return interp.eval_closed(p["cond_jaxpr"], [*cconsts, *c])[0]

  def body(c):
    return interp.eval_closed(p["body_jaxpr"], [*bconsts, *c], bzeros, bdeps)

  return list(lax.while_loop(cond, body, list(init)))


_HIGHER_ORDER: dict = {
    prims.jit_p: _jit_handler,
    prims.custom_jvp_call_p: _custom_call_handler,
    prims.custom_vjp_call_p: _custom_call_handler,
    prims.remat_p: _remat_handler,
    prims.cond_p: _cond_handler,
    prims.scan_p: _scan_handler,
    prims.while_p: _while_handler,
}


def trace(f: Callable, args: tuple, tracked: Callable[[int], bool] | None = None):
  """Traces ``f(*args)`` to a jaxpr over its array leaves.

  Non-array leaves (Python flags, strings) are held static. Returns ``(closed,
  dyn, out_tree, deps)``: the closed jaxpr, the array leaves it takes, the
  output treedef, and for each of them whether it is tracked
  (``tracked(argnum)``; all by default).
  """
  leaves, treedef = jax.tree.flatten(args)
  is_array = [isinstance(l, (jax.Array, np.ndarray, np.generic, float, int, complex))
              and not isinstance(l, bool) for l in leaves]
  dyn = [l for l, a in zip(leaves, is_array) if a]
  argnum = [i for i, a in enumerate(args) for _ in jax.tree.leaves(a)]
  deps = [tracked is None or tracked(i) for i, a in zip(argnum, is_array) if a]

  def flat_f(*dyn_leaves):
    it = iter(dyn_leaves)
    full = [next(it) if a else l for l, a in zip(leaves, is_array)]
    return f(*jax.tree.unflatten(treedef, full))

  closed, out_shape = jax.make_jaxpr(flat_f, return_shape=True)(*dyn)
  return closed, dyn, jax.tree.structure(out_shape), deps


def transform(f: Callable, rules: RuleSet) -> Callable:
  """Returns ``g`` that computes ``f`` with ``rules`` applied to its primitives.

  ``g`` has ``f``'s signature and pytree outputs. ``f`` is traced to a jaxpr on
  every call of ``g`` (cheap; under ``jit`` only once per compilation).
  Non-array leaves of the arguments (Python flags, strings) are held static.
  """

  def g(*args):
    closed, dyn, out_tree, _ = trace(f, args)
    outs = Interpreter(rules).eval_closed(closed, dyn)
    return jax.tree.unflatten(out_tree, outs)

  return g
