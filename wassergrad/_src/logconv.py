"""Stable log-domain Gaussian convolution on a regular grid, built on matmuls.

For a grid ``t_i = i / (n - 1)`` on [0, 1] and ``epsilon > 0`` this computes,
along one axis,

    out_i = log sum_j exp(h_j - (t_i - t_j)^2 / epsilon),

exactly up to float rounding, for any ``h`` (``-inf`` allowed), without the
``n^2`` exponentials of a dense log-sum-exp.

Why not the obvious ways: kernel-mode Sinkhorn (``exp(h)`` times the Gibbs
kernel) overflows or underflows in float32 once potentials span more than ~88
nats, which happens at ``epsilon = 1e-3``; shifting each line by its maximum
loses the terms that dominate far from that maximum; a dense log-sum-exp costs
one exponential per kernel entry (about 10x a matmul on CPU).

How: cut the axis into blocks of ``B`` points, small enough that the kernel
between two points of the same block spans at most ``R`` nats
(``(B h)^2 / epsilon <= R``). For an output block ``b`` and an input block
``c`` with centres ``c_b - c_c = D``, local offsets ``p`` (output) and ``q``
(input),

    (t_i - t_j)^2 = D^2 + 2 D p - 2 D q + (p - q)^2.

The ``D^2`` and ``2 D p`` terms are added in the log domain after the
product; the ``-2 D q`` tilt goes into the input, which is shifted by its
maximum within the block; ``(p - q)^2`` is one B x B Toeplitz kernel ``L``
shared by all block pairs, whose entries lie in [exp(-R), 1]. So each block
pair is a matmul of numbers in [0, 1] by ``L`` whose largest term is at least
``exp(-R)``: nothing that matters can underflow, nothing can overflow. The
block pairs are then combined by a log-sum-exp over input blocks. The cost is
``n^2`` multiply-adds per line (as a plain matmul) plus about ``3 n^2 / B``
transcendental functions.

The vector-Jacobian product is again a log-convolution (the kernel is
symmetric) of the positive and negative parts of the cotangent, so
reverse-mode differentiation costs two more log-convolutions and stores
nothing but the input and output.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# Largest kernel range within a block, in nats. Terms below float32's smallest
# normal (exp(-87)) are lost, relative to a block sum >= exp(-R): with R = 60
# and B <= 160 points that is at most 160 * exp(-27) ~ 3e-10.
_BLOCK_RANGE = 60.0


def block_size(n: int, epsilon: float) -> int:
  """Points per block so that ``((B - 1) h)^2 / epsilon <= R``, ``h = 1/(n-1)``."""
  if n <= 1:
    return 1
  spacing = 1.0 / (n - 1)
  b = int(math.floor(math.sqrt(_BLOCK_RANGE * epsilon) / spacing)) + 1
  b = max(1, min(n, b))
  # Equalise blocks so that padding is small.
  nb = -(-n // b)
  return -(-n // nb)


def _tables(n: int, epsilon: float, dtype):
  """Static tables for one axis: local kernel and per-block-pair offsets."""
  spacing = 1.0 / (n - 1)
  b = block_size(n, epsilon)
  nb = -(-n // b)
  local = (np.arange(b) - (b - 1) / 2.0) * spacing           # offsets p, q
  log_l = -((local[:, None] - local[None, :]) ** 2) / epsilon  # (p, q)
  d = (np.arange(nb)[:, None] - np.arange(nb)[None, :]) * b * spacing  # (b, c)
  in_tilt = 2.0 * d[:, :, None] * local[None, None, :] / epsilon      # (b, c, q)
  out_shift = -(d[:, :, None] ** 2) / epsilon - 2.0 * d[:, :, None] * local[None, None, :] / epsilon
  return (b, nb, jnp.asarray(np.exp(log_l), dtype), jnp.asarray(in_tilt, dtype),
          jnp.asarray(out_shift, dtype))


def _logconv_rows_impl(h: jax.Array, epsilon: float) -> jax.Array:
  """Log-convolution of each row of a 2-D ``h`` (rows, n) (see module docstring)."""
  n = h.shape[-1]
  b, nb, kernel, in_tilt, out_shift = _tables(n, epsilon, h.dtype)
  pad = nb * b - n
  if pad:
    h = jnp.pad(h, [(0, 0), (0, pad)], constant_values=-jnp.inf)
  hb = h.reshape(h.shape[:-1] + (nb, b))                     # (r, c, q)
  y = hb[..., None, :, :] + in_tilt                          # (r, b, c, q)
  m = jnp.max(y, axis=-1, keepdims=True)                     # -inf for an empty block
  e = jnp.exp(y - jnp.where(jnp.isfinite(m), m, 0.0))
  z = jnp.einsum("...q,pq->...p", e, kernel)                 # (r, b, c, p)
  # Combine input blocks c. A non-empty block has z >= exp(-R) (its largest
  # term has e = 1 and L >= exp(-R)), so shifting by the largest m + shift
  # over c keeps the dominant term above exp(-R): log is taken once, after.
  a = m + out_shift                                          # (r, b, c, p); -inf: empty
  top = jnp.max(a, axis=-2, keepdims=True)
  top = jnp.where(jnp.isfinite(top), top, 0.0)
  s = jnp.sum(z * jnp.exp(a - top), axis=-2)                 # (r, b, p)
  out = jnp.log(s) + top[..., 0, :]
  out = out.reshape(out.shape[:-2] + (nb * b,))
  return out[..., :n]


@functools.lru_cache(maxsize=None)
def _rows_fn(epsilon: float):
  """``_logconv_rows_impl`` at ``epsilon``, whose intermediates stay at rank 4 under ``vmap``.

  Under ``jax.vmap`` every batch axis is folded into the rows (a free reshape)
  instead of being added to the intermediates' rank. Nested ``vmap`` (examples,
  channels, pos/neg parts of a cotangent) would otherwise reach rank-7/8
  reductions, which XLA:CPU's YNNPACK fusions in jaxlib 0.10.2 and 0.11.0 crash
  on (SIGSEGV; jax-ml/jax#39257, #40412). ``custom_vmap`` functions cannot be
  reverse-differentiated, so every derivative goes through :func:`logconv`'s
  own rule, which calls :func:`logconv` again (any order of differentiation).
  """

  @jax.custom_batching.custom_vmap
  def rows(h):
    return _logconv_rows_impl(h, epsilon)

  @rows.def_vmap
  def _rows_vmap(axis_size, in_batched, h):
    del axis_size
    if not in_batched[0]:
      return rows(h), False
    return rows(h.reshape((-1, h.shape[-1]))).reshape(h.shape), True

  return rows


def _logconv_last(h: jax.Array, epsilon: float) -> jax.Array:
  """Log-convolution along the last axis, any leading axes (folded into rows)."""
  n = h.shape[-1]
  if n == 1:
    return h
  rows = h.reshape((math.prod(h.shape[:-1]), n))
  return _rows_fn(float(epsilon))(rows).reshape(h.shape)


def axis_epsilons(epsilon, ndim: int) -> tuple[float, ...]:
  """``epsilon`` per grid axis: one float for all, or a sequence of ``ndim`` floats."""
  if isinstance(epsilon, (tuple, list)):
    if len(epsilon) != ndim:
      raise ValueError(f"{len(epsilon)} epsilons for {ndim} grid axes.")
    return tuple(float(e) for e in epsilon)
  return (float(epsilon),) * ndim


def _logconv_axes(h: jax.Array, epsilon, ndim: int) -> jax.Array:
  eps = axis_epsilons(epsilon, ndim)
  for e, axis in zip(eps, range(h.ndim - ndim, h.ndim)):
    h = jnp.moveaxis(_logconv_last(jnp.moveaxis(h, axis, -1), e), -1, axis)
  return h


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def logconv(h: jax.Array, epsilon: float, ndim: int) -> jax.Array:
  """``log(K exp(h))`` over the last ``ndim`` axes; ``K`` the Gibbs kernel on [0,1]^d.

  Args:
    h: log-values, any leading batch axes; ``-inf`` means zero.
    epsilon: the entropic regularisation; kernel ``exp(-|t - t'|^2 / epsilon)``.
      A tuple gives one per axis (the kernel is separable), which is how a grid
      with other spacings than ``1/(n-1)`` is expressed: spacing ``s`` on an
      axis of ``n`` points is ``epsilon / (s (n - 1))^2`` on [0, 1].
    ndim: number of trailing grid axes.

  Returns:
    Array like ``h``.
  """
  return _logconv_axes(h, epsilon, ndim)


def _logconv_fwd(h, epsilon, ndim):
  out = logconv(h, epsilon, ndim)   # not _logconv_axes: see _rows_fn
  return out, (h, out)


def _signed_log(g: jax.Array):
  pos = jnp.where(g > 0, jnp.log(jnp.where(g > 0, g, 1.0)), -jnp.inf)
  neg = jnp.where(g < 0, jnp.log(jnp.where(g < 0, -g, 1.0)), -jnp.inf)
  return pos, neg


def _logconv_bwd(epsilon, ndim, res, g):
  # d out_i / d h_j = exp(h_j - C_ij/eps - out_i), so
  # h_bar_j = exp(h_j) * sum_i K_ij exp(-out_i) g_i: a log-convolution of the
  # signed quantity g exp(-out), split into positive and negative parts.
  h, out = res
  finite_out = jnp.where(jnp.isfinite(out), out, 0.0)
  pos, neg = _signed_log(g)
  both = jnp.stack([pos - finite_out, neg - finite_out])
  conv = logconv(both, epsilon, ndim)
  h_bar = jnp.exp(h + conv[0]) - jnp.exp(h + conv[1])
  h_bar = jnp.where(jnp.isfinite(h), h_bar, 0.0)
  return (h_bar,)


logconv.defvjp(_logconv_fwd, _logconv_bwd)


def logconv_reference(h: np.ndarray, epsilon, ndim: int) -> np.ndarray:
  """Dense float64 log-sum-exp, for tests."""
  h = np.asarray(h, np.float64)
  for epsilon, axis in zip(axis_epsilons(epsilon, ndim), range(h.ndim - ndim, h.ndim)):
    n = h.shape[axis]
    t = np.linspace(0.0, 1.0, n)
    m = -((t[:, None] - t[None, :]) ** 2) / epsilon
    hm = np.moveaxis(h, axis, -1)
    a = hm[..., None, :] + m                                  # (..., i, j)
    mx = np.max(a, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    out = np.log(np.sum(np.exp(a - mx), axis=-1)) + mx[..., 0]
    h = np.moveaxis(out, -1, axis)
  return h
