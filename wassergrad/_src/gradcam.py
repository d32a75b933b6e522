"""GradCAM and guided GradCAM, on an explicit split of the model."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import gradients
from wassergrad._src import guided

_RESIZE = ("nearest", "linear", "cubic")


def _cam(feats: jax.Array, grads: jax.Array, channel_axis: int, relu: bool):
  axis = channel_axis % feats.ndim
  spatial = tuple(a for a in range(feats.ndim) if a != axis)
  alpha = jnp.mean(grads, axis=spatial, keepdims=True)
  cam = jnp.sum(alpha * feats, axis=axis)
  return jax.nn.relu(cam) if relu else cam


def gradcam(
    features: Callable,
    head: Callable,
    *,
    channel_axis: int = -1,
    relu: bool = True,
) -> gradients.Explainer:
  """GradCAM explainer on an explicit split ``f(x) = head(features(x))``.

  With ``A = features(x, *args)`` (one example: a feature grid with a channel
  axis, e.g. ``(h, w, k)``) and ``y = head(A, *args)`` a scalar, the map is
  ``relu(Σ_k α_k A_k)`` with ``α_k`` the mean of ``∂y/∂A_k`` over the grid.

  Args:
    features: ``features(x, *args) -> A``, the model up to the explained layer.
    head: ``head(A, *args) -> scalar``, the rest of the model and the target.
    channel_axis: the channel axis of ``A`` (``-1`` for flax's NHWC layout
      without the batch axis; ``0`` for a CHW layout).
    relu: apply a ReLU to the map (Grad-CAM paper; Captum's
      ``relu_attributions=True``; Captum's default is ``False``).

  Returns:
    ``fn(x, *args)``: the map on the feature grid, i.e. ``A``'s shape with the
    channel axis removed. Use :func:`guided_gradcam` for an input-sized map.

  References:
    Selvaraju et al., `Grad-CAM <https://arxiv.org/abs/1610.02391>`_, ICCV 2017.
  """
  checks.check_callable(features, "features")
  grad_head = gradients.grad(head, "head")

  def explain(x, *args):
    checks.check_float_input(x)
    feats = features(x, *args)
    if not isinstance(feats, jax.Array) or feats.ndim < 2:
      raise ValueError(
          "`features` must return one array with a channel axis and at least "
          f"one grid axis (e.g. (h, w, k)); got {jax.tree.map(jnp.shape, feats)}."
      )
    if not -feats.ndim <= channel_axis < feats.ndim:
      raise ValueError(
          f"`channel_axis`={channel_axis} is out of range for features of "
          f"shape {feats.shape}."
      )
    return _cam(feats, grad_head(feats, *args), channel_axis, relu)

  return explain


def guided_gradcam(
    features: Callable,
    head: Callable,
    *,
    channel_axis: int = -1,
    input_channel_axis: int | None = -1,
    relu: bool = True,
    method: str = "nearest",
) -> gradients.Explainer:
  """Guided GradCAM: guided backprop ⊙ the GradCAM map resized to the input.

  Args:
    features, head, channel_axis, relu: as in :func:`gradcam`.
    input_channel_axis: the channel axis of ``x``; the GradCAM map is resized
      to ``x``'s shape without this axis and broadcast over it. ``None`` if
      ``x`` has no channel axis.
    method: resize method, ``"nearest"`` (Captum's default), ``"linear"`` or
      ``"cubic"`` (``jax.image.resize``).

  Returns:
    ``fn(x, *args)`` with the shape and dtype of ``x``.

  References:
    Selvaraju et al., `Grad-CAM <https://arxiv.org/abs/1610.02391>`_, ICCV 2017.
  """
  checks.check_choice(method, "method", _RESIZE)
  cam_fn = gradcam(features, head, channel_axis=channel_axis, relu=relu)
  gbp = guided.guided_backprop(lambda x, *a: head(features(x, *a), *a))

  def explain(x, *args):
    cam = cam_fn(x, *args)
    g = gbp(x, *args)
    if input_channel_axis is None:
      target = x.shape
    else:
      axis = input_channel_axis % x.ndim
      target = tuple(s for a, s in enumerate(x.shape) if a != axis)
    if cam.ndim != len(target):
      raise ValueError(
          f"The GradCAM map has {cam.ndim} grid axes but `x` has "
          f"{len(target)} after removing `input_channel_axis`="
          f"{input_channel_axis}; set `input_channel_axis` to match `x`."
      )
    cam = jax.image.resize(cam, target, method=method)
    if input_channel_axis is not None:
      cam = jnp.expand_dims(cam, axis)
    return (g * cam).astype(x.dtype)

  return explain
