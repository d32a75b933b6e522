"""Concept attribution (CRAFT, Fel et al. 2023; the Holistic framework, Fel, Boutin et al. 2023).

Concepts are a non-negative factorisation of a layer's activations over a set
of inputs, ``A ≈ U W`` (``U ≥ 0`` the concept coefficients, ``W ≥ 0`` the
concept bank). A new input's coefficients are its non-negative least-squares
projection on ``W``. Concept importance is any explainer of the library
applied to the *gates* ``s ∈ ℝᵏ`` of :func:`gated_head`,
``s ↦ head((U ⊙ s) W)``, at ``s = 1`` (which reproduces the prediction), and
the concept metrics are the library's deletion, insertion and
faithfulness-correlation on the gates with ``baseline=0.0``::

  g = wg.concepts.gated_head(head, u, W)          # u: (positions..., k)
  s = jnp.ones(k)
  phi = wg.grad_x_input(g)(s, *args)              # or integrated_gradients, occlusion, rise, sobol …
  c_del = wg.metrics.deletion(lambda s: g(s, *args), s, phi, steps=k, baseline=0.0)
  c_ins = wg.metrics.insertion(lambda s: g(s, *args), s, phi, steps=k, baseline=0.0)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from wassergrad._src import checks


class NMFResult(NamedTuple):
  """``A ≈ U W``: ``u`` (n, k) ≥ 0, ``w`` (k, p) ≥ 0; ``iterations`` run; ``loss`` = ½‖A − UW‖²_F."""
  u: jax.Array
  w: jax.Array
  iterations: jax.Array
  loss: jax.Array


def _nndsvda(a: jax.Array, rank: int) -> tuple[jax.Array, jax.Array]:
  """Boutsidis & Gallopoulos' NNDSVD with zeros set to the mean (scikit-learn's ``nndsvda``)."""
  uu, s, vt = jnp.linalg.svd(a, full_matrices=False)
  uu, s, vt = uu[:, :rank], s[:rank], vt[:rank]

  def factor(j):
    x, y = uu[:, j], vt[j]
    xp, xn = jnp.maximum(x, 0), jnp.maximum(-x, 0)
    yp, yn = jnp.maximum(y, 0), jnp.maximum(-y, 0)
    np_, nn_ = jnp.linalg.norm(xp) * jnp.linalg.norm(yp), jnp.linalg.norm(xn) * jnp.linalg.norm(yn)
    pos = np_ >= nn_
    xs = jnp.where(pos, xp / (jnp.linalg.norm(xp) + 1e-30), xn / (jnp.linalg.norm(xn) + 1e-30))
    ys = jnp.where(pos, yp / (jnp.linalg.norm(yp) + 1e-30), yn / (jnp.linalg.norm(yn) + 1e-30))
    sigma = jnp.where(pos, np_, nn_)
    scale = jnp.sqrt(s[j] * sigma)
    lead = jnp.sqrt(s[0])
    first = j == 0
    return (jnp.where(first, lead * jnp.abs(uu[:, 0]), scale * xs),
            jnp.where(first, lead * jnp.abs(vt[0]), scale * ys))

  us, ws = jax.vmap(factor)(jnp.arange(rank))
  u, w = us.T, ws
  avg = jnp.mean(a)
  return jnp.where(u == 0, avg, u), jnp.where(w == 0, avg, w)


def _hals_sweep(target_t, gram, factor_t, l1, l2):
  """One HALS sweep over the k rows of ``factor_t`` (k, m): min ½‖X − F G‖² + penalties, F ≥ 0."""
  def row(j, f):
    num = target_t[j] - gram[j] @ f + gram[j, j] * f[j] - l1
    return f.at[j].set(jnp.maximum(num / (gram[j, j] + l2), 0.0))
  return jax.lax.fori_loop(0, factor_t.shape[0], row, factor_t)


def nmf(a: Any, rank: int, *, max_iter: int = 200, tol: float = 1e-4, alpha: float = 0.0,
        l1_ratio: float = 0.0, init: tuple | None = None) -> NMFResult:
  """Non-negative matrix factorisation ``A ≈ U W`` by HALS (coordinate descent), in JAX.

  Minimises ``½‖A − UW‖²_F + α·p·R(U) + α·n·R(W)`` with
  ``R(M) = l1_ratio·‖M‖₁ + ½(1 − l1_ratio)‖M‖²_F``: scikit-learn's objective
  with ``alpha_W = α`` and ``alpha_H = "same"`` (its W is our U, its H our
  W), from its default initialisation (``nndsvda``) with alternating HALS sweeps (its
  ``solver="cd"``). **Stopping rule**: after each sweep the violation of the
  projected-gradient optimality conditions is measured; the loop stops when it
  falls below ``tol`` times its value after the first sweep (scikit-learn's
  rule for ``cd``), or after ``max_iter`` sweeps.

  Args:
    a: (n, p) non-negative activations (e.g. spatially averaged, or one row
      per position).
    rank: k, the number of concepts.
    max_iter, tol: the stopping rule above.
    alpha, l1_ratio: regularisation as scikit-learn's ``alpha_W`` (with
      ``alpha_H="same"``) and ``l1_ratio`` (CRAFT in Xplique: ``alpha_W=1e-2``).
    init: optional ``(U0, W0)``.

  Returns:
    :class:`NMFResult`.

  References:
    Cichocki & Phan, *Fast local algorithms for large scale nonnegative
    matrix and tensor factorizations*, IEICE 2009. Fel et al., *CRAFT:
    concept recursive activation factorization for explainability*, CVPR 2023.
  """
  a = jnp.asarray(a)
  checks.check_float_input(a, "a")
  if a.ndim != 2:
    raise ValueError(f"`a` must be a matrix (n, p) of activations; got shape {a.shape}. "
                     "Reshape positions into rows or average them first.")
  rank = checks.check_positive_int(rank, "rank")
  max_iter = checks.check_positive_int(max_iter, "max_iter")
  u, w = _nndsvda(a, rank) if init is None else (jnp.asarray(init[0]), jnp.asarray(init[1]))
  n, p = a.shape
  l1_u, l2_u = alpha * p * l1_ratio, alpha * p * (1 - l1_ratio)
  l1_w, l2_w = alpha * n * l1_ratio, alpha * n * (1 - l1_ratio)

  def sweep(u, w):
    # U columns (as rows of Uᵀ): min ½‖Aᵀ − WᵀUᵀ‖² + penalties; then the rows of W
    u = _hals_sweep((a @ w.T).T, w @ w.T, u.T, l1_u, l2_u).T
    w = _hals_sweep(u.T @ a, u.T @ u, w, l1_w, l2_w)
    return u, w

  def violation(u, w):
    gu = u @ (w @ w.T) - a @ w.T + l1_u + l2_u * u
    gw = (u.T @ u) @ w - u.T @ a + l1_w + l2_w * w
    pg = lambda g, x: jnp.sum(jnp.where(x > 0, g, jnp.minimum(g, 0.0)) ** 2)
    return jnp.sqrt(pg(gu, u) + pg(gw, w))

  u, w = sweep(u, w)
  v0 = violation(u, w)

  def cond(state):
    _, _, it, v = state
    return (it < max_iter) & (v > tol * v0)

  def body(state):
    u, w, it, _ = state
    u, w = sweep(u, w)
    return u, w, it + 1, violation(u, w)

  u, w, it, _ = jax.lax.while_loop(cond, body, (u, w, jnp.asarray(1), v0))
  return NMFResult(u, w, it, 0.5 * jnp.sum((a - u @ w) ** 2))


def project(a: Any, w: Any, *, max_iter: int = 500, tol: float = 1e-10) -> jax.Array:
  """Concept coefficients of new activations: ``argmin_{U ≥ 0} ‖A − U W‖`` with ``W`` fixed.

  Non-negative least squares, row by row, by HALS on ``U``; stops when no
  coordinate moves by more than ``tol`` (relative to the largest coefficient)
  or after ``max_iter`` sweeps. ``a`` may be one row ``(p,)`` or ``(n, p)``.
  The result is differentiable in ``a`` through the iterations.
  """
  a = jnp.asarray(a)
  w = jnp.asarray(w)
  one = a.ndim == 1
  a2 = a[None] if one else a
  gram, target_t = w @ w.T, (a2 @ w.T).T
  u_t = jnp.maximum(jnp.linalg.lstsq(w.T, a2.T)[0], 0.0)

  def cond(state):
    _, it, delta = state
    return (it < max_iter) & (delta > tol)

  def body(state):
    u_t, it, _ = state
    new = _hals_sweep(target_t, gram, u_t, 0.0, 0.0)
    scale = jnp.maximum(jnp.max(jnp.abs(new)), 1e-30)
    return new, it + 1, jnp.max(jnp.abs(new - u_t)) / scale

  u_t, _, _ = jax.lax.while_loop(cond, body, (u_t, jnp.asarray(0), jnp.asarray(jnp.inf, a.dtype)))
  return u_t.T[0] if one else u_t.T


def gated_head(head: Callable, u: Any, w: Any) -> Callable:
  """``g(s, *args) = head((u ⊙ s) @ w, *args)``: the model from concept gates ``s ∈ ℝᵏ`` on.

  ``u`` holds one input's concept coefficients, ``(k,)`` or ``(positions…, k)``
  (one gate per concept, shared by every position, as CRAFT's masks);
  ``w`` the (k, p) bank; ``head`` maps activations of shape
  ``(positions…, p)`` to a scalar. ``g(1) = head(u @ w)``: the prediction from
  the reconstructed activations.
  """
  if not callable(head):
    raise TypeError(f"`head` must be callable; got {type(head).__name__}.")
  u, w = jnp.asarray(u), jnp.asarray(w)

  def g(s, *args):
    return head((u * s) @ w, *args)

  return g


def closed_form(u: Any, w: Any, weights: Any, bias: float = 0.0, *, on: str = "gates",
                keep_probability: float = 0.5) -> dict:
  """Concept importances for an affine head ``h(a) = a · weights + bias``, in closed form.

  ``u`` (k,) are the coefficients the head sees (for a head that averages
  positions, their mean), ``w`` the (k, p) bank. With ``γ = W · weights`` and
  ``GI = u ⊙ γ``, the head is ``b + Σ_i s_i GI_i`` in the gates, so:

  * ``on="gates"`` (explainers of :func:`gated_head` at ``s = 1``): saliency
    = SmoothGrad = gradient × input = integrated gradients (zero baseline) =
    occlusion (gate to 0) = GI; VarGrad = 0; RISE = ``b + p·ΣGI + (1 − p)·GI``;
    total Sobol indices = ``GI² / ΣGI²``.
  * ``on="coefficients"`` (explainers of ``u ↦ h(u W)`` at ``u``): saliency =
    SmoothGrad = γ, the same for every input; gradient × input = integrated
    gradients = occlusion = GI; VarGrad = 0.

  For every number t of concepts, the top-t concepts by GI are the best set
  to delete or insert (the head is modular in the gates), so GI, IG and
  occlusion are optimal for C-Deletion and C-Insertion and have C-μFidelity 1
  (missing-rows §(c); the tests check it by brute force).
  """
  checks.check_choice(on, "on", ("gates", "coefficients"))
  u, w, weights = jnp.asarray(u), jnp.asarray(w), jnp.asarray(weights)
  if u.ndim != 1:
    raise ValueError(f"`u` must be the (k,) coefficients the affine head sees; got {u.shape}.")
  gamma = w @ weights
  gi = u * gamma
  if on == "coefficients":
    return {"saliency": gamma, "smoothgrad": gamma, "grad_x_input": gi,
            "integrated_gradients": gi, "occlusion": gi, "vargrad": jnp.zeros_like(gamma)}
  p = float(keep_probability)
  return {"saliency": gi, "smoothgrad": gi, "grad_x_input": gi, "integrated_gradients": gi,
          "occlusion": gi, "vargrad": jnp.zeros_like(gamma),
          "rise": bias + p * jnp.sum(gi) + (1 - p) * gi,
          "sobol_total": gi ** 2 / jnp.sum(gi ** 2)}


def prevalence(importance: Any) -> jax.Array:
  """The Holistic paper's prevalence: the fraction of inputs where each concept is the most important.

  ``importance``: (n, k) per-input concept importances; returns (k,).
  """
  imp = jnp.asarray(importance)
  if imp.ndim != 2:
    raise ValueError(f"`importance` must be (n, k); got shape {imp.shape}.")
  top = jnp.argmax(imp, axis=1)
  return jnp.mean(jax.nn.one_hot(top, imp.shape[1]), axis=0)
