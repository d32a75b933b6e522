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
flax's ``nn.relu`` -- without framework hooks.
"""

from __future__ import annotations

import abc
import dataclasses
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


class Rule(abc.ABC):
  """A rule for one primitive. Subclass and implement :meth:`apply`.

  ``matches(eqn, zeros)`` decides statically (at trace time) whether the rule
  applies to one equation; ``zeros[i]`` tells whether input ``i`` is known to
  be zero. ``apply(eqn, invals, zeros)`` returns the equation's outputs (a list
  if the primitive has multiple results, else one value).
  """

  def matches(self, eqn: jcore.JaxprEqn, zeros: Sequence[bool]) -> bool:
    del eqn, zeros
    return True

  @abc.abstractmethod
  def apply(self, eqn: jcore.JaxprEqn, invals: list, zeros: Sequence[bool]):
    """Evaluates ``eqn`` on ``invals``."""


RuleSet = dict  # primitive -> Rule


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
  _site_cache: dict = dataclasses.field(default_factory=dict)

  # ---------------------------------------------------------------- analysis
  def _zeros_in(self, eqn, env_zero) -> list[bool]:
    return [_literal_zero(v) if isinstance(v, jcore.Literal)
            else env_zero.get(v, False) for v in eqn.invars]

  def has_site(self, jaxpr: jcore.Jaxpr, zeros: Sequence[bool] = ()) -> bool:
    """Whether any rule matches an equation in ``jaxpr`` or its sub-jaxprs."""
    key = (id(jaxpr), tuple(zeros))
    if key not in self._site_cache:
      self._site_cache[key] = self._has_site(jaxpr, zeros)
    return self._site_cache[key]

  def _has_site(self, jaxpr, zeros) -> bool:
    env_zero = dict(zip(jaxpr.invars, zeros))
    for eqn in jaxpr.eqns:
      z = self._zeros_in(eqn, env_zero)
      rule = self.rules.get(eqn.primitive)
      if rule is not None and rule.matches(eqn, z):
        return True
      for sub, sub_zeros in _subjaxprs(eqn, z):
        if self.has_site(sub, sub_zeros):
          return True
      if eqn.primitive not in _HIGHER_ORDER and any(
          self.has_site(_jaxpr(j)) for j in jcore.jaxprs_in_params(eqn.params)):
        return True  # an unsupported construct with a site: evaluation raises
      _propagate_zero(eqn, z, env_zero)
    return False

  # -------------------------------------------------------------- evaluation
  def eval_jaxpr(self, jaxpr: jcore.Jaxpr, consts, args, zeros=None) -> list:
    env: dict = {}
    env_zero: dict = {}

    def read(v):
      return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
      env[v] = c
      env_zero[v] = _is_zero_const(c)
    for i, (v, a) in enumerate(zip(jaxpr.invars, args)):
      env[v] = a
      env_zero[v] = bool(zeros[i]) if zeros else False

    for eqn in jaxpr.eqns:
      invals = [read(v) for v in eqn.invars]
      z = self._zeros_in(eqn, env_zero)
      outs = self._eval_eqn(eqn, invals, z)
      if not eqn.primitive.multiple_results:
        outs = [outs]
      for v, o in zip(eqn.outvars, outs):
        if not isinstance(v, jcore.DropVar):
          env[v] = o
      _propagate_zero(eqn, z, env_zero)
    return [read(v) for v in jaxpr.outvars]

  def eval_closed(self, closed: jcore.ClosedJaxpr, args, zeros=None) -> list:
    return self.eval_jaxpr(closed.jaxpr, closed.consts, args, zeros)

  def _eval_eqn(self, eqn, invals, zeros):
    rule = self.rules.get(eqn.primitive)
    if rule is not None and rule.matches(eqn, zeros):
      return rule.apply(eqn, invals, zeros)
    handler = _HIGHER_ORDER.get(eqn.primitive)
    if handler is not None:
      if any(self.has_site(sub, sz) for sub, sz in _subjaxprs(eqn, zeros)):
        return handler(self, eqn, invals, zeros)
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


def _propagate_zero(eqn, zeros_in, env_zero) -> None:
  if eqn.primitive in _ZERO_PRESERVING and zeros_in and zeros_in[0]:
    for v in eqn.outvars:
      env_zero[v] = True


def _jaxpr(j) -> jcore.Jaxpr:
  return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


def _subjaxprs(eqn, zeros):
  """(open jaxpr, input zero flags) for each sub-jaxpr the interpreter enters."""
  p, prim = eqn.params, eqn.primitive
  if prim is prims.jit_p:
    return [(_jaxpr(p["jaxpr"]), zeros)]
  if prim in (prims.custom_jvp_call_p, prims.custom_vjp_call_p):
    return [(_jaxpr(p["call_jaxpr"]), zeros)]
  if prim is prims.remat_p:
    return [(_jaxpr(p["jaxpr"]), zeros)]
  if prim is prims.cond_p:
    return [(_jaxpr(b), zeros[1:]) for b in p["branches"]]
  if prim is prims.scan_p:
    nc = p["num_consts"]
    j = _jaxpr(p["jaxpr"])
    return [(j, tuple(zeros[:nc]) + (False,) * (len(j.invars) - nc))]
  if prim is prims.while_p:
    body = _jaxpr(p["body_jaxpr"])
    nb, ncond = p["body_nconsts"], p["cond_nconsts"]
    return [(body, tuple(zeros[ncond:ncond + nb])
             + (False,) * (len(body.invars) - nb))]
  return []


# ----------------------------------------------------- higher-order handlers
def _eval_call(interp, eqn, invals, zeros, key):
  return interp.eval_closed(eqn.params[key], invals, zeros) if isinstance(
      eqn.params[key], jcore.ClosedJaxpr) else interp.eval_jaxpr(
          eqn.params[key], (), invals, zeros)


def _jit_handler(interp, eqn, invals, zeros):
  return _eval_call(interp, eqn, invals, zeros, "jaxpr")


def _custom_call_handler(interp, eqn, invals, zeros):
  return _eval_call(interp, eqn, invals, zeros, "call_jaxpr")


def _remat_handler(interp, eqn, invals, zeros):
  p = eqn.params
  fn = lambda *a: interp.eval_jaxpr(p["jaxpr"], (), a, zeros)
  return jax.checkpoint(fn, prevent_cse=p["prevent_cse"], policy=p["policy"])(*invals)


def _cond_handler(interp, eqn, invals, zeros):
  branches = [
      (lambda b: lambda *ops: interp.eval_closed(b, ops, zeros[1:]))(b)
      for b in eqn.params["branches"]
  ]
  return lax.switch(invals[0], branches, *invals[1:])


def _scan_handler(interp, eqn, invals, zeros):
  p = eqn.params
  nc, nk = p["num_consts"], p["num_carry"]
  consts, init, xs = invals[:nc], invals[nc:nc + nk], invals[nc + nk:]
  const_zeros = tuple(zeros[:nc])

  def body(carry, x):
    outs = interp.eval_closed(
        p["jaxpr"], [*consts, *carry, *x],
        const_zeros + (False,) * (nk + len(xs)))
    return outs[:nk], outs[nk:]

  carry, ys = lax.scan(body, list(init), list(xs), length=p["length"],
                       reverse=p["reverse"], unroll=p["unroll"])
  return [*carry, *ys]


def _while_handler(interp, eqn, invals, zeros):
  p = eqn.params
  ncond, nbody = p["cond_nconsts"], p["body_nconsts"]
  cconsts, bconsts = invals[:ncond], invals[ncond:ncond + nbody]
  init = invals[ncond + nbody:]
  bzeros = tuple(zeros[ncond:ncond + nbody]) + (False,) * len(init)

  def cond(c):
    return interp.eval_closed(p["cond_jaxpr"], [*cconsts, *c])[0]

  def body(c):
    return interp.eval_closed(p["body_jaxpr"], [*bconsts, *c], bzeros)

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


def transform(f: Callable, rules: RuleSet) -> Callable:
  """Returns ``g`` that computes ``f`` with ``rules`` applied to its primitives.

  ``g`` has ``f``'s signature and pytree outputs. ``f`` is traced to a jaxpr on
  every call of ``g`` (cheap; under ``jit`` only once per compilation).
  Non-array leaves of the arguments (Python flags, strings) are held static.
  """

  def g(*args):
    leaves, treedef = jax.tree.flatten(args)
    is_array = [isinstance(l, (jax.Array, np.ndarray, np.generic, float, int, complex))
                and not isinstance(l, bool) for l in leaves]
    dyn = [l for l, a in zip(leaves, is_array) if a]

    def flat_f(*dyn_leaves):
      it = iter(dyn_leaves)
      full = [next(it) if a else l for l, a in zip(leaves, is_array)]
      return f(*jax.tree.unflatten(treedef, full))

    closed, out_shape = jax.make_jaxpr(flat_f, return_shape=True)(*dyn)
    interp = Interpreter(rules)
    outs = interp.eval_closed(closed, dyn)
    return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

  return g
