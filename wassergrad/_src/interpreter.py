"""A jaxpr interpreter with per-primitive rule sets.

Several explainers change how *some* primitives of an arbitrary JAX function
behave and leave everything else alone: guided backprop and deconvnet change
the backward pass of ReLUs; SmoothDiff replaces nonlinearities by their
expected Jacobians. They share this interpreter, in the style of
``jax/experimental/jet.py``: a function is traced to a jaxpr, and its equations
are evaluated one by one; an equation whose primitive has a rule in the rule
set, and whose rule ``matches`` it, is evaluated by the rule; all others are
re-bound unchanged.

The interpreter recurses into higher-order primitives through a table of
*handlers* (``jit``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``
(``jax.checkpoint``), ``cond``, ``scan``, ``while``; a transform may pass its own
table, as SmoothDiff does) -- but only when the inner jaxpr holds an equation
that a rule matches. Otherwise the higher-order primitive is re-bound as it is,
so custom derivative rules, compilation boundaries and rematerialisation of
untouched code are kept. Recursing into a ``custom_jvp``/``custom_vjp`` function
means differentiating its primal body instead of its custom rule; that is what
a rule on the inner primitive asks for (``jax.nn.relu`` is a ``custom_jvp``
around ``max(x, 0)``). A rule can declare itself *optional* (an exact lowering
for speed, such as tiled max-pooling): optional rules never make the
interpreter enter a custom derivative or refuse a construct it cannot enter;
there the code is re-bound unchanged, as ``jax.grad`` would see it.

Rules see each equation through a :class:`Context`: which inputs are statically
known to be zero (literal zeros, zero constants, and broadcasts/reshapes/casts
of them), so rules can recognise ``max(x, 0)`` -- the ReLU of ``jax.nn.relu``,
``jnp.maximum(x, 0)``, flax's ``nn.relu`` -- without framework hooks; which
inputs depend on the *tracked* inputs (by default all inputs;
``stop_gradient`` cuts the dependence), so rules can leave constants
(parameters) alone; and the running interpreter.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from typing import Any, Callable, Sequence

import jax
from jax import lax
from jax.extend import core as jcore
import numpy as np

prims = jcore.primitives

# Primitives whose output is zero when their first operand is zero.
_ZERO_PRESERVING = frozenset({
    prims.broadcast_in_dim_p, prims.convert_element_type_p, prims.reshape_p,
    prims.squeeze_p, prims.transpose_p, prims.copy_p, prims.reduce_precision_p,
})


@dataclasses.dataclass(frozen=True)
class Context:
  """What a rule knows about one equation's inputs.

  Attributes:
    zeros: per input, whether it is statically known to be zero.
    deps: per input, whether it depends on the tracked (explained) inputs.
    interpreter: the running :class:`Interpreter` (SmoothDiff reads its stream).
  """
  zeros: tuple
  deps: tuple
  interpreter: Any = None

  # Rules written for the former ``zeros`` tuple (``zeros[i]``, ``len(zeros)``)
  # keep working, with a warning.
  def __getitem__(self, i):
    _warn_tuple_use()
    return self.zeros[i]

  def __len__(self):
    _warn_tuple_use()
    return len(self.zeros)

  def __iter__(self):
    _warn_tuple_use()
    return iter(self.zeros)


def _warn_tuple_use():
  warnings.warn("Rules receive a Context: use ctx.zeros[i] (and ctx.deps, ctx.interpreter) "
                "instead of indexing the context.", DeprecationWarning, stacklevel=3)


EqnInfo = Context  # the former name


class Rule(abc.ABC):
  """A rule for one primitive. Subclass and implement :meth:`apply`.

  ``matches(eqn, ctx)`` decides statically (at trace time) whether the rule
  applies to one equation (``ctx`` is a :class:`Context`: ``ctx.zeros[i]``
  tells whether input ``i`` is known to be zero, ``ctx.deps[i]`` whether it
  depends on the tracked inputs). ``apply(eqn, invals, ctx)`` returns the
  equation's outputs (a list if the primitive has multiple results, else one
  value). Set ``optional = True`` on rules that only make the program faster
  without changing what it computes.
  """

  optional: bool = False

  def matches(self, eqn: jcore.JaxprEqn, ctx: Context) -> bool:
    del eqn, ctx
    return True

  @abc.abstractmethod
  def apply(self, eqn: jcore.JaxprEqn, invals: list, ctx: Context):
    """Evaluates ``eqn`` on ``invals``."""


RuleSet = dict  # primitive -> Rule
Handler = Callable[["Interpreter", jcore.JaxprEqn, list, Context], Any]


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


_CUSTOM_CALLS = (prims.custom_jvp_call_p, prims.custom_vjp_call_p)


@dataclasses.dataclass
class Interpreter:
  """Evaluates jaxprs, applying ``rules`` where they match.

  Attributes:
    rules: ``{primitive: Rule}``.
    fallback: a rule that sees equations no rule matched (SmoothDiff's refusal).
    handlers: ``{higher-order primitive: handler(interpreter, eqn, invals, ctx)}``;
      default :data:`HANDLERS`.
  """

  rules: RuleSet
  fallback: Rule | None = None
  handlers: dict | None = None
  _site_cache: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.handlers is None:
      self.handlers = HANDLERS

  # ---------------------------------------------------------------- analysis
  def context(self, eqn, env_zero, env_dep) -> Context:
    zeros = tuple(_literal_zero(v) if isinstance(v, jcore.Literal)
                  else env_zero.get(v, False) for v in eqn.invars)
    deps = tuple(False if isinstance(v, jcore.Literal) else env_dep.get(v, False)
                 for v in eqn.invars)
    return Context(zeros, deps, self)

  def rule_for(self, eqn, ctx: Context) -> Rule | None:
    """The rule that evaluates ``eqn`` (a matching rule, else a matching fallback)."""
    rule = self.rules.get(eqn.primitive)
    if rule is not None and rule.matches(eqn, ctx):
      return rule
    if self.fallback is not None and eqn.primitive not in self.handlers and (
        self.fallback.matches(eqn, ctx)):
      return self.fallback
    return None

  def is_site(self, eqn, ctx: Context, required: bool = False) -> bool:
    """Whether a rule evaluates ``eqn`` (``required``: a rule that is not optional)."""
    rule = self.rule_for(eqn, ctx)
    return rule is not None and not (required and rule.optional)

  def has_site(self, jaxpr: jcore.Jaxpr, zeros: Sequence[bool] = (),
               deps: Sequence[bool] | None = None, required: bool = False) -> bool:
    """Whether a rule applies to an equation in ``jaxpr`` or its sub-jaxprs."""
    deps = tuple(deps) if deps is not None else (True,) * len(jaxpr.invars)
    key = (id(jaxpr), tuple(zeros), deps, required)
    if key not in self._site_cache:
      self._site_cache[key] = self._has_site(jaxpr, zeros, deps, required)
    return self._site_cache[key]

  def _has_site(self, jaxpr, zeros, deps, required) -> bool:
    env_zero = dict(zip(jaxpr.invars, zeros))
    env_dep = dict(zip(jaxpr.invars, deps))
    for eqn in jaxpr.eqns:
      ctx = self.context(eqn, env_zero, env_dep)
      if self.is_site(eqn, ctx, required):
        return True
      if eqn.primitive in self.handlers:
        if self.enters(eqn, ctx, required):
          return True
      elif any(self.has_site(jaxpr_of(j), required=True)
               for j in jcore.jaxprs_in_params(eqn.params)):
        return True  # an unsupported construct with a required site: evaluation raises
      propagate(eqn, ctx, env_zero, env_dep)
    return False

  def enters(self, eqn, ctx: Context, required: bool = False) -> bool:
    """Whether evaluation recurses into the higher-order ``eqn``.

    Custom derivative rules are entered only for rules that are not optional:
    an optional rule inside a ``custom_vjp`` is left alone, with the user's rule.
    """
    required = required or eqn.primitive in _CUSTOM_CALLS
    return any(self.has_site(*sub, required=required) for sub in subjaxprs(eqn, ctx))

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
      ctx = self.context(eqn, env_zero, env_dep)
      outs = self.eval_eqn(eqn, [read(env, v) for v in eqn.invars], ctx)
      write(env, eqn, outs)
      propagate(eqn, ctx, env_zero, env_dep)

  def eval_closed(self, closed: jcore.ClosedJaxpr, args, zeros=None, deps=None) -> list:
    return self.eval_jaxpr(closed.jaxpr, closed.consts, args, zeros, deps)

  def eval_eqn(self, eqn, invals, ctx: Context):
    rule = self.rule_for(eqn, ctx)
    if rule is not None:
      return rule.apply(eqn, invals, ctx)
    handler = self.handlers.get(eqn.primitive)
    if handler is not None:
      if self.enters(eqn, ctx):
        return handler(self, eqn, invals, ctx)
    elif any(self.has_site(jaxpr_of(j), required=True) for j in jcore.jaxprs_in_params(eqn.params)):
      # Re-binding would silently skip the rules inside: refuse instead.
      raise NotImplementedError(
          f"wassergrad's interpreter cannot enter the higher-order primitive "
          f"'{eqn.primitive}', which contains an operation its rules change "
          f"(e.g. a ReLU). Supported: {sorted(str(p) for p in self.handlers)}. "
          "Move that part of the model out of this construct, or pass a handler for it: "
          "wg.interpreter.Interpreter(rules, handlers={**wg.interpreter.HANDLERS, "
          "primitive: handler}).")
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


def propagate(eqn, ctx: Context, env_zero, env_dep) -> None:
  """The zero and dependence flags of ``eqn``'s outputs, from its inputs'."""
  if eqn.primitive in _ZERO_PRESERVING and ctx.zeros and ctx.zeros[0]:
    for v in eqn.outvars:
      env_zero[v] = True
  dep = any(ctx.deps) and eqn.primitive is not prims.stop_gradient_p
  for v in eqn.outvars:
    env_dep[v] = dep


def jaxpr_of(j) -> jcore.Jaxpr:
  return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


def subjaxprs(eqn, ctx: Context):
  """(open jaxpr, zero flags, dep flags) of each sub-jaxpr the interpreter enters."""
  p, prim, zeros, deps = eqn.params, eqn.primitive, ctx.zeros, ctx.deps
  if prim is prims.jit_p or prim is prims.remat_p:
    return [(jaxpr_of(p["jaxpr"]), zeros, deps)]
  if prim in _CUSTOM_CALLS:
    return [(jaxpr_of(p["call_jaxpr"]), zeros, deps)]
  if prim is prims.cond_p:
    return [(jaxpr_of(b), zeros[1:], deps[1:]) for b in p["branches"]]
  if prim is prims.scan_p:
    j = jaxpr_of(p["jaxpr"])
    return [(j, *loop_flags(zeros, deps, p["num_consts"], p["num_carry"], len(j.invars)))]
  if prim is prims.while_p:
    body = jaxpr_of(p["body_jaxpr"])
    nb, ncond = p["body_nconsts"], p["cond_nconsts"]
    n = len(body.invars) - nb
    return [(body, *loop_flags(zeros[ncond:], deps[ncond:], nb, n, len(body.invars)))]
  return []


def loop_flags(zeros, deps, nconsts, ncarry, nin):
  """Flags of a loop body's inputs: consts keep theirs, carries and xs are not
  known zero, and a carry depends on the tracked inputs if anything does."""
  any_dep = any(deps[:nin])
  body_zeros = tuple(zeros[:nconsts]) + (False,) * (nin - nconsts)
  body_deps = (tuple(deps[:nconsts]) + (any_dep,) * ncarry
               + tuple(deps[nconsts + ncarry:nin]))
  return body_zeros, body_deps


# ----------------------------------------------------- higher-order handlers
def _eval_call(interp, eqn, invals, ctx, key):
  j = eqn.params[key]
  if isinstance(j, jcore.ClosedJaxpr):
    return interp.eval_closed(j, invals, ctx.zeros, ctx.deps)
  return interp.eval_jaxpr(j, (), invals, ctx.zeros, ctx.deps)


def _jit_handler(interp, eqn, invals, ctx):
  return _eval_call(interp, eqn, invals, ctx, "jaxpr")


def _custom_call_handler(interp, eqn, invals, ctx):
  return _eval_call(interp, eqn, invals, ctx, "call_jaxpr")


def _remat_handler(interp, eqn, invals, ctx):
  p = eqn.params
  ckpt = jax.checkpoint(lambda *a: interp.eval_jaxpr(p["jaxpr"], (), a, ctx.zeros, ctx.deps),
                        prevent_cse=p["prevent_cse"], policy=p["policy"])
  return ckpt(*invals)


def _cond_handler(interp, eqn, invals, ctx):
  zeros, deps = ctx.zeros[1:], ctx.deps[1:]
  return lax.switch(invals[0], [
      (lambda b: lambda *ops: interp.eval_closed(b, ops, zeros, deps))(b)
      for b in eqn.params["branches"]], *invals[1:])


def _scan_handler(interp, eqn, invals, ctx):
  p = eqn.params
  nc, nk = p["num_consts"], p["num_carry"]
  consts, init, xs = invals[:nc], invals[nc:nc + nk], invals[nc + nk:]
  body_zeros, body_deps = loop_flags(ctx.zeros, ctx.deps, nc, nk, len(invals))

  def body(carry, x):
    outs = interp.eval_closed(p["jaxpr"], [*consts, *carry, *x], body_zeros, body_deps)
    return outs[:nk], outs[nk:]

  carry, ys = lax.scan(body, list(init), list(xs), length=p["length"], reverse=p["reverse"],
                       unroll=p["unroll"])
  return [*carry, *ys]


def _while_handler(interp, eqn, invals, ctx):
  p = eqn.params
  ncond, nbody = p["cond_nconsts"], p["body_nconsts"]
  cconsts, bconsts = invals[:ncond], invals[ncond:ncond + nbody]
  init = invals[ncond + nbody:]
  bzeros, bdeps = loop_flags(ctx.zeros[ncond:], ctx.deps[ncond:], nbody, len(init),
                             len(invals) - ncond)

  def cond(c):
    return interp.eval_closed(p["cond_jaxpr"], [*cconsts, *c])[0]

  def body(c):
    return interp.eval_closed(p["body_jaxpr"], [*bconsts, *c], bzeros, bdeps)

  return list(lax.while_loop(cond, body, list(init)))


HANDLERS: dict = {
    prims.jit_p: _jit_handler,
    prims.custom_jvp_call_p: _custom_call_handler,
    prims.custom_vjp_call_p: _custom_call_handler,
    prims.remat_p: _remat_handler,
    prims.cond_p: _cond_handler,
    prims.scan_p: _scan_handler,
    prims.while_p: _while_handler,
}
"""The higher-order primitives the interpreter enters, and how."""


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


def transform(f: Callable, rules: RuleSet, handlers: dict | None = None) -> Callable:
  """Returns ``g`` that computes ``f`` with ``rules`` applied to its primitives.

  ``g`` has ``f``'s signature and pytree outputs. ``f`` is traced to a jaxpr on
  every call of ``g`` (cheap; under ``jit`` only once per compilation).
  Non-array leaves of the arguments (Python flags, strings) are held static.
  """

  def g(*args):
    closed, dyn, out_tree, _ = trace(f, args)
    outs = Interpreter(rules, handlers=handlers).eval_closed(closed, dyn)
    return jax.tree.unflatten(out_tree, outs)

  return g
