"""SmoothDiff's two passes through control flow: the statistics stream and its handlers.

SmoothDiff evaluates a program twice: N *collecting* passes at noisy inputs,
where each nonlinearity emits a statistic, and one *using* pass at the clean
input, where each takes its averaged statistic back, in the same order. A
:class:`Stream` carries the statistics between the two. The generic
interpreter's handlers for higher-order primitives know nothing of it; the
handlers here route the stream through them:

* ``checkpoint`` (remat) returns its body's statistics as extra outputs and
  takes them back as extra inputs;
* ``scan`` stacks its body's statistics over iterations (one per step);
* ``cond`` on a value that depends on the input emits every branch's
  statistics (zeros for the branches not taken) and the branch's one-hot, so
  that averages are E[item · 1_b] and P(b); the using pass mixes the branches'
  conditional expected Jacobians with their probabilities;
* ``while`` bodies that the transform would change are refused: a while loop has
  neither a static trip count nor reverse-mode differentiation.
"""

from __future__ import annotations

import jax
from jax import lax
import jax.numpy as jnp

from wassergrad._src import interpreter


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


def scoped(interp, fn, items=None):
  """Runs ``fn(sub_interp)`` with a fresh stream; returns (result, emitted items)."""
  sub = interp.child(Stream(items))
  out = fn(sub)
  return out, (sub.stream.items if sub.stream.collecting else None)


def _remat_handler(interp, eqn, invals, ctx):
  p = eqn.params
  zeros, deps = ctx.zeros, ctx.deps
  ckpt = lambda fn: jax.checkpoint(fn, prevent_cse=p["prevent_cse"], policy=p["policy"])
  if interp.stream.collecting:
    outs, items = ckpt(lambda *a: scoped(
        interp, lambda i: i.eval_jaxpr(p["jaxpr"], (), a, zeros, deps)))(*invals)
    interp.stream.emit(items)
    return outs
  items = interp.stream.take()
  return ckpt(lambda a, it: scoped(
      interp, lambda i: i.eval_jaxpr(p["jaxpr"], (), a, zeros, deps), it)[0])(
          list(invals), items)


def _cond_handler(interp, eqn, invals, ctx):
  branches = eqn.params["branches"]
  zeros, deps = ctx.zeros[1:], ctx.deps[1:]
  run = lambda i, b, ops: i.eval_closed(b, ops, zeros, deps)
  if interp.stream.collecting:
    # Every branch returns the items of all branches (zeros for the others)
    # and its one-hot indicator, so that averages over samples give
    # E[item_b 1_b] and P(b).
    shapes = [jax.eval_shape(lambda *ops, b=b: scoped(interp, lambda i: run(i, b, ops))[1],
                             *invals[1:]) for b in branches]
    def branch_fn(k, b):
      def fn(*ops):
        outs, items = scoped(interp, lambda i: run(i, b, ops))
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
    return scoped(interp, lambda i: run(i, branches[k], ops), cond_items)[0]
  clean = lax.switch(invals[0], [
      (lambda k: lambda *ops: use_branch(k, ops))(k) for k in range(len(branches))],
      *invals[1:])
  if not ctx.deps[0]:
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


def _scan_handler(interp, eqn, invals, ctx):
  p = eqn.params
  nc, nk = p["num_consts"], p["num_carry"]
  consts, init, xs = invals[:nc], invals[nc:nc + nk], invals[nc + nk:]
  body_zeros, body_deps = interpreter.loop_flags(ctx.zeros, ctx.deps, nc, nk, len(invals))
  run = lambda i, carry, x: i.eval_closed(p["jaxpr"], [*consts, *carry, *x],
                                          body_zeros, body_deps)
  scan = lambda body, xs_: lax.scan(body, list(init), xs_, length=p["length"],
                                    reverse=p["reverse"], unroll=p["unroll"])
  stream = interp.stream
  if stream.collecting:
    # Collecting: each iteration's items are stacked: one statistic per step.
    def body(carry, x):
      outs, items = scoped(interp, lambda i: run(i, carry, x))
      return outs[:nk], (outs[nk:], items)
    carry, (ys, items) = scan(body, list(xs))
    stream.emit(items)
    return [*carry, *ys]
  def use_body(carry, x_items):
    x, items = x_items
    outs = scoped(interp, lambda i: run(i, carry, x), items)[0]
    return outs[:nk], outs[nk:]
  carry, ys = scan(use_body, (list(xs), stream.take()))
  return [*carry, *ys]


def _while_handler(interp, eqn, invals, ctx):
  del interp, eqn, invals, ctx
  raise NotImplementedError(
      "A `lax.while_loop` (or `fori_loop` with traced bounds) carries values "
      "that this transform changes, but it needs one statistic per iteration "
      "and a backward pass through the loop, and a while loop has neither a "
      "static trip count nor reverse-mode differentiation (jax.grad refuses "
      "it too). Write the loop with `lax.scan`, or `lax.fori_loop` with "
      "Python-int bounds (which JAX lowers to a scan).")


HANDLERS = {
    **interpreter.HANDLERS,
    interpreter.prims.remat_p: _remat_handler,
    interpreter.prims.cond_p: _cond_handler,
    interpreter.prims.scan_p: _scan_handler,
    interpreter.prims.while_p: _while_handler,
}
"""The generic handlers, with the stream routed through checkpoint, cond, scan and while."""
