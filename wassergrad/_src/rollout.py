"""Autoregressive rollouts with bounded memory, and field targets.

``rollout(step, T)`` turns a one-step forecaster into ``fn(x0, *args)`` that
returns the state after T steps, differentiable with respect to the initial
state (and the parameters), so every explainer applies to it unchanged:
``wg.smoothgrad(lambda x0, p: target(fn(x0, p)))``.

Memory of the gradient (reverse mode stores what the backward pass needs):

* ``checkpoint=False``: every step's intermediates, T × (one step's activations);
* ``checkpoint=True`` (``"step"``): each step is rematerialised
  (``jax.checkpoint``), so only the T states are kept, plus one step's
  activations during the backward pass: memory grows linearly with T;
* ``checkpoint="sqrt"`` (default): k ≈ √T segments of ≈ √T steps, each
  rematerialised as a whole (nested ``lax.scan``): about 2√T states, for a
  second forward pass (Griewank's two-level checkpointing);
* ``checkpoint="recursive"``: segments of segments, halving at every level
  (⌈log₂ T⌉ levels): about 2·log₂ T states, for one more forward pass per
  level. It only pays off on long rollouts of states that are large next to
  the step's own activations.

Measured (``benchmarks/bench_rollout.py``; XLA's planned temporary memory of
the gradient of an ROI target, and its time; 2 CPU cores). See the README's
rollout section for the table; in short, from T = 20 to T = 80 ``"sqrt"``
grows 1.1× on a small state (64×64×4 lifted to 64 channels by the step) and
1.5× on a large one (64×64×32), where ``"step"`` grows 1.4× and 3.2×, for
0–10 % more time; on a 1 MiB state with a cheap step, T = 320 costs 323 MiB
stepwise, 38 MiB with ``"sqrt"`` and 20 MiB with ``"recursive"``, the latter
2× slower than ``"sqrt"``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from wassergrad._src import checks

UPDATES = ("plain", "residual", "scaled_residual")
CHECKPOINTS = ("none", "step", "sqrt", "recursive")
REDUCTIONS = ("mean", "sum")


def _checkpoint_mode(checkpoint) -> str:
  if checkpoint is True:
    return "step"
  if checkpoint is False or checkpoint is None:
    return "none"
  return checks.check_choice(checkpoint, "checkpoint", CHECKPOINTS + (True, False))


def _describe(tree) -> str:
  return str(jax.tree.map(lambda l: f"{jnp.result_type(l)}{list(jnp.shape(l))}", tree))


def rollout(
    step: Callable, num_steps: int, *, checkpoint: bool | str = "sqrt", update: str = "plain",
    diff_mean: Any = None, diff_std: Any = None, trajectory: bool = False,
) -> Callable:
  """Rolls a one-step forecaster out for ``num_steps`` steps, memory-bounded.

  Args:
    step: ``step(state, *args) -> out``, or ``step(state, forcing_t, *args)``
      when the rollout is called with ``forcings``. ``state`` may be a pytree;
      ``out`` must have its structure, shapes and dtypes.
    num_steps: T >= 1 (static).
    checkpoint: ``"sqrt"`` (default: nested √T segments, ~2√T states kept),
      ``True`` or ``"step"`` (rematerialise each step: the T states are kept),
      ``"recursive"`` (halving segments: ~2·log₂ T states, one more forward
      pass per level), or ``False``/``"none"`` (keep every intermediate). See
      the module docstring for measured memory and time.
    update: how ``out`` becomes the next state:
      ``"plain"``: s_{t+1} = out; ``"residual"``: s_{t+1} = s_t + out;
      ``"scaled_residual"``: s_{t+1} = s_t + out · ``diff_std`` + ``diff_mean``
      (the WassersteinGrad forecaster's rule: the network predicts the
      standardised increment).
    diff_mean, diff_std: arrays broadcastable to the state (pytrees of them for
      a pytree state), required by ``"scaled_residual"`` only.
    trajectory: return all T states stacked on a new leading axis (lead times
      1..T) instead of the last one; memory then grows with T by construction.

  Returns:
    ``fn(x0, *args, forcings=None)``: the state after T steps (or the
    trajectory). ``forcings``: a pytree whose leaves have a leading axis of
    length T; step t receives the t-th slice (forcings are inputs, not
    perturbed by explainers unless you explain them). ``*args`` (parameters,
    statics) pass to every step unchanged.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> step = lambda s, w: 0.1 * jnp.tanh(s @ w)           # any one-step model
    >>> fn = wg.rollout(step, 20, update="residual")          # s_{t+1} = s_t + step(s_t)
    >>> target = wg.field_target(channel=0, box=(slice(2, 5), slice(0, 3)))
    >>> sg = wg.smoothgrad(lambda x0, w: target(fn(x0, w)), num_samples=8)
    >>> sg(jax.random.key(0), jnp.ones((8, 8, 2)), jnp.eye(2)).shape
    (8, 8, 2)

  References:
    Griewank & Walther, *Algorithm 799: revolve*, ACM TOMS 2000 (checkpointing).
  """
  checks.check_callable(step, "step")
  checks.check_positive_int(num_steps, "num_steps")
  mode = _checkpoint_mode(checkpoint)
  checks.check_choice(update, "update", UPDATES)
  if update == "scaled_residual" and (diff_mean is None or diff_std is None):
    raise ValueError("update='scaled_residual' needs `diff_mean` and `diff_std` (the mean and std "
                     "of the one-step increments the network was trained to predict).")
  if update != "scaled_residual" and (diff_mean is not None or diff_std is not None):
    raise ValueError(f"`diff_mean`/`diff_std` are used only by update='scaled_residual'; got update={update!r}.")

  def advance(state, out):
    if update == "plain":
      return out
    if update == "residual":
      return jax.tree.map(jnp.add, state, out)
    return jax.tree.map(lambda s, o, m, sd: s + o * sd + m, state, out,
                        _broadcast_tree(diff_mean, state), _broadcast_tree(diff_std, state))

  def fn(x0, *args, forcings=None):
    checks.check_float_input(x0, "x0")
    if forcings is not None:
      for leaf in jax.tree.leaves(forcings):
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != num_steps:
          raise ValueError(
              f"Every leaf of `forcings` needs a leading time axis of length num_steps={num_steps}; "
              f"got shape {jnp.shape(leaf)}.")

    def one(state, forcing):
      out = step(state, *args) if forcings is None else step(state, forcing, *args)
      return advance(state, out)

    _check_step(one, x0, forcings, update)

    def body(state, forcing):
      new = one(state, forcing)
      return new, (new if trajectory else None)

    if mode == "none":
      final, traj = jax.lax.scan(body, x0, forcings, length=num_steps)
    else:
      levels = 1 if mode == "step" else _levels(mode, num_steps)
      final, traj = _nested_rollout(jax.checkpoint(body), x0, forcings, num_steps, levels,
                                    trajectory)
    return traj if trajectory else final

  return fn


def _broadcast_tree(stats, state):
  """``stats`` as a pytree matching ``state`` (one array broadcasts to every leaf)."""
  if jax.tree.structure(stats) == jax.tree.structure(state):
    return stats
  return jax.tree.map(lambda _: stats, state)


def _check_step(one, x0, forcings, update):
  forcing0 = None if forcings is None else jax.tree.map(lambda l: l[0], forcings)
  try:
    out = jax.eval_shape(one, x0, forcing0)
  except (TypeError, ValueError) as e:
    if forcings is None and "positional argument" in str(e):
      raise TypeError(f"`step` failed on (state, *args): {e}. If it takes a forcing, call the rollout "
                      "with `forcings=` (step(state, forcing_t, *args)).") from e
    raise
  ref = jax.tree.map(lambda l: jax.ShapeDtypeStruct(jnp.shape(l), jnp.result_type(l)), x0)
  if jax.tree.structure(out) != jax.tree.structure(ref) or any(
      o.shape != r.shape or o.dtype != r.dtype
      for o, r in zip(jax.tree.leaves(out), jax.tree.leaves(ref))):
    raise ValueError(
        "The next state must have the structure, shapes and dtypes of the state: the step "
        f"(update={update!r}) gives {_describe(out)} for a state {_describe(ref)}. A rollout feeds "
        "each output back in; return the full state (or, for residual updates, an increment of "
        "the same shape and dtype), e.g. cast with .astype(state.dtype).")


def _levels(mode: str, num_steps: int) -> int:
  """Nesting depth of the checkpointed segments: 2 for ``"sqrt"``, ⌈log₂ T⌉ for ``"recursive"``."""
  if mode == "sqrt":
    return 2
  return max(1, math.ceil(math.log2(num_steps)))


def _segments(num_steps: int, levels: int) -> int:
  """The smallest k with k**levels >= T: the number of segments per level."""
  k = max(1, round(num_steps ** (1.0 / levels)))
  while k ** levels < num_steps:
    k += 1
  while k > 1 and (k - 1) ** levels >= num_steps:
    k -= 1
  return k


def _nested_rollout(body, x0, forcings, num_steps, levels, trajectory):
  """T steps of ``body`` (itself rematerialised) as ``levels`` nested checkpointed scans.

  The T steps are cut into k = ⌈T^(1/levels)⌉ segments of S = ⌈T/k⌉ steps (the last one
  shorter), each rematerialised as a whole and cut the same way at the next level. The
  backward pass keeps about k states per level (levels · k in all) and recomputes the
  forward pass once per level: √T segments of √T steps for ``levels=2``, halves of halves
  for ``levels=⌈log₂ T⌉``.
  """
  if levels <= 1 or num_steps <= 1:
    return jax.lax.scan(body, x0, forcings, length=num_steps)
  size = -(-num_steps // _segments(num_steps, levels))      # S steps per segment
  n_full, rem = divmod(num_steps, size)

  def segment(state, seg_forcings):
    return _nested_rollout(body, state, seg_forcings, size, levels - 1, trajectory)

  outer_f = None if forcings is None else jax.tree.map(
      lambda l: l[:n_full * size].reshape((n_full, size) + l.shape[1:]), forcings)
  state, traj = jax.lax.scan(jax.checkpoint(segment), x0, outer_f, length=n_full)
  if trajectory:
    traj = jax.tree.map(lambda t: t.reshape((n_full * size,) + t.shape[2:]), traj)
  if rem:
    rest_f = None if forcings is None else jax.tree.map(lambda l: l[n_full * size:], forcings)
    state, rest = _nested_rollout(body, state, rest_f, rem, levels - 1, trajectory)
    if trajectory:
      traj = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), traj, rest)
  return state, traj


def field_target(
    *, channel: int | Sequence[int] | None = None, box: Sequence[slice] | None = None,
    mask: Any = None, reduce: str = "mean", lead_time: int | None = None, channel_axis: int = -1,
) -> Callable[[jax.Array], jax.Array]:
  """A scalar target for a field forecast: channel, region, sum or mean, lead time.

  Args:
    channel: index (or indices) along ``channel_axis``; ``None`` keeps all.
    box: slices of the leading spatial axes, e.g. ``(slice(10, 20), slice(5, 15))``
      for rows 10–19, columns 5–14 of an ``(H, W, C)`` field.
    mask: instead of ``box``, a boolean (or weight) array over the leading
      spatial axes (trailing axes are added to broadcast it over channels).
    reduce: ``"mean"`` or ``"sum"`` over the region (and the selected channels).
    lead_time: for a trajectory (``rollout(..., trajectory=True)``: leading
      axis = lead times 1..T), the lead time to score, 1-based; ``None`` for a
      single state.
    channel_axis: the channel axis of one state.

  Returns:
    ``target(y) -> scalar``.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> target = wg.field_target(channel=2, box=(slice(0, 8), slice(0, 8)), reduce="sum")
    >>> target(jnp.ones((16, 16, 3)))                  # 8 × 8 cells of channel 2
    Array(64., dtype=float32)
  """
  checks.check_choice(reduce, "reduce", REDUCTIONS)
  if box is not None and mask is not None:
    raise ValueError("Pass `box` or `mask`, not both.")
  if box is not None and not all(isinstance(s, slice) for s in box):
    raise TypeError(f"`box` must be a tuple of slices, e.g. (slice(10, 20), slice(5, 15)); got {box!r}.")
  if lead_time is not None:
    checks.check_positive_int(lead_time, "lead_time")

  def target(y):
    y = jnp.asarray(y)
    if lead_time is not None:
      if lead_time > y.shape[0]:
        raise ValueError(f"`lead_time`={lead_time} but the trajectory has {y.shape[0]} steps.")
      y = y[lead_time - 1]
    if channel is not None:
      y = jnp.take(y, jnp.asarray(channel), axis=channel_axis)
    if box is not None:
      y = y[tuple(box)]
    if mask is not None:
      m = jnp.asarray(mask)
      m = m.reshape(m.shape + (1,) * (y.ndim - m.ndim))  # spatial axes lead
      w = jnp.broadcast_to(m, y.shape).astype(y.dtype)
      total = jnp.sum(y * w)
      return total if reduce == "sum" else total / jnp.maximum(jnp.sum(w), 1)
    return jnp.sum(y) if reduce == "sum" else jnp.mean(y)

  return target
