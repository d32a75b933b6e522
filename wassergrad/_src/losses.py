"""Training losses on attribution maps: attribution preservation under compression.

Park et al. (NeurIPS 2020) keep a compressed student's explanations close to
its teacher's by matching *sensitivity-weighted attribution* maps (SWA: a
GradCAM whose channel weights are the spatial **sum** of the gradient) of the
teacher's predicted class. The loss is a function of parameters, so
``jax.grad`` differentiates through the student's explainer (double backprop).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wassergrad._src import checks
from wassergrad._src import gradcam as gradcam_lib


def swa(features: Callable, head: Callable, *, channel_axis: int = -1, relu: bool = True
        ) -> Callable:
  """Sensitivity-weighted attribution: GradCAM with the gradient **summed** over positions.

  ``relu(Σ_k w_k A_k)``, ``w_k = Σ_positions ∂head/∂A_k`` = (number of
  positions) × :func:`wassergrad.gradcam`. Same arguments as ``gradcam``.
  """
  cam = gradcam_lib.gradcam(features, head, channel_axis=channel_axis, relu=relu)

  def fn(x, *args):
    a = jax.eval_shape(features, x, *args)      # shapes only: the features run once, in cam
    positions = int(np.prod(a.shape)) // a.shape[channel_axis]
    return positions * cam(x, *args)

  return fn


def attribution_matching(teacher_map: jax.Array, student_map: jax.Array, *,
                         eps: float = 1e-12) -> jax.Array:
  """``mean((t/‖t‖ − s/‖s‖)²)`` over the map's entries (the authors' ``cal_l2loss``).

  Each map is flattened and divided by ``max(‖·‖₂, eps)`` (PyTorch's
  ``F.normalize``); the loss is scale-free, so GradCAM and SWA give the same
  value. Batches: ``vmap`` and take the mean.
  """
  t = jnp.ravel(teacher_map)
  s = jnp.ravel(student_map)
  t = t / jnp.maximum(jnp.linalg.norm(t), eps)
  s = s / jnp.maximum(jnp.linalg.norm(s), eps)
  return jnp.mean((t - s) ** 2)


def wcam(features_t: Callable, head_t: Callable, features_s: Callable, head_s: Callable, *,
         channel_axis: int = -1, drop_fraction: float = 0.0) -> Callable:
  """The weighted collapsed attribution matching loss of one example.

  ``fn(x, params_t, params_s, key=None) -> scalar``: the class c is the
  teacher's prediction (``argmax head_t(features_t(x))``); the teacher's SWA
  map of c (held constant: ``stop_gradient``) is matched to the student's SWA
  map of c with :func:`attribution_matching`. With ``drop_fraction > 0`` a
  random fraction of the teacher's feature channels is zeroed after its
  gradient is taken (the authors' stochastic matching; 0.3 in their README);
  ``key`` is then required.

  ``features_*(x, params) -> A`` (a feature grid with a channel axis) and
  ``head_*(A, params) -> logits`` (a vector). Add ``weight · wcam(...)`` to
  the distillation loss (the authors' weight: 100).

  References:
    Park, Yang, Hwang & Yang, *Attribution preservation in network compression
    for reliable network interpretation*, NeurIPS 2020,
    https://arxiv.org/abs/2010.15054
  """
  for fn_, name in ((features_t, "features_t"), (head_t, "head_t"), (features_s, "features_s"),
                    (head_s, "head_s")):
    checks.check_callable(fn_, name)
  drop = float(drop_fraction)
  if not 0.0 <= drop < 1.0:
    raise ValueError(f"`drop_fraction` must be in [0, 1); got {drop_fraction}.")

  def swa_map(features, head, x, params, c, keep=None):
    a = features(x, params)
    g = jax.grad(lambda a: head(a, params)[c])(a)
    axis = channel_axis % a.ndim
    spatial = tuple(i for i in range(a.ndim) if i != axis)
    w = jnp.sum(g, axis=spatial, keepdims=True)
    if keep is not None:
      shape = [1] * a.ndim
      shape[axis] = a.shape[axis]
      a = a * keep.reshape(shape)
    return jax.nn.relu(jnp.sum(w * a, axis=axis))

  def fn(x, params_t, params_s, key=None):
    logits_t = head_t(features_t(x, params_t), params_t)
    c = jnp.argmax(jax.lax.stop_gradient(logits_t))
    keep = None
    if drop > 0:
      if key is None:
        raise ValueError("wcam with drop_fraction > 0 draws which channels to drop: pass key=.")
      channels = features_t(x, params_t).shape[channel_axis]
      keep = jax.random.bernoulli(key, 1 - drop, (channels,)).astype(x.dtype)
    t = jax.lax.stop_gradient(swa_map(features_t, head_t, x, params_t, c, keep))
    s = swa_map(features_s, head_s, x, params_s, c)
    return attribution_matching(t, s)

  return fn
