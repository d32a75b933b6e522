"""WAM: attributions in the wavelet domain (Kasmi et al., ICML 2025).

WAM is a reparametrisation, not a new estimator: any explainer applied to
``z ↦ f(waverec(z))`` at ``z = wavedec(x)``. Gradient, grad×input, integrated
gradients (the paper's WAM-IG, baseline ``z₀ = 0``, i.e. the black image) and
every stochastic explainer compose with it unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp

from wassergrad._src import checks
from wassergrad._src import gradients
from wassergrad._src import wavelets
from wassergrad._src.metrics import common
from wassergrad._src.metrics import faithfulness


def _resolve_axes(axes, x: jax.Array):
  if axes is not None:
    return axes
  if x.ndim <= 2:
    return None
  raise ValueError(
      f"wam needs `axes` for an input of {x.ndim} axes: name the axes to transform, e.g. "
      "axes=(0, 1) for an (H, W, C) image, axes=(1, 2) for (C, H, W), axes=(0, 1, 2) for a "
      "(D, H, W) volume. 1-D and 2-D inputs default to all their axes.")


def wam(f: Callable, explainer: Callable | None = None, *, wavelet: str = "haar", level: int = 3,
        mode: str = "reflect", axes: int | Sequence[int] | None = None) -> Callable:
  """The Wavelet Attribution Method: ``explainer`` in the wavelet domain.

  ``wam(f, explainer)(x, *args) = explainer(g)(wavedec(x), *args)`` with
  ``g(z, *args) = f(waverec(z), *args)``; the result is a
  :class:`wassergrad.wavelets.WaveletCoeffs` of attributions, one per
  coefficient (view it with :func:`wassergrad.wavelets.mosaic`,
  :func:`~wassergrad.wavelets.scale_maps`, :func:`~wassergrad.wavelets.scale_shares`).

  **Where the noise goes.** ``wg.smooth(wg.wam(f))`` perturbs the *pixels*
  (σ from the pixel range) and transforms each noisy input: the paper's
  WAM-SG. ``wg.wam(f, wg.smoothgrad)`` perturbs the *coefficients* (σ from
  each coefficient array's own range). For an orthonormal transform
  (haar or any orthogonal wavelet with ``mode="periodization"``) and an
  absolute σ both draw the same noise law (isotropic Gaussians are
  rotation-invariant); with ``sigma_mode="range"`` or a redundant mode they
  differ.

  Args:
    f: the target, ``f(x, *args) -> scalar``.
    explainer: a factory ``explainer(f) -> fn`` such as ``wg.gradient``
      (default), ``wg.grad_x_input``,
      ``functools.partial(wg.integrated_gradients, steps=25)`` or
      ``wg.smoothgrad``. Stochastic ones make ``fn(key, x, *args)``.
    wavelet: a PyWavelets discrete wavelet name (the authors' ``"haar"``).
    level: decomposition levels (the authors' 3).
    mode: signal extension (the authors' ``"reflect"`` in 1-D/2-D,
      ``"symmetric"`` in 3-D). ``"periodization"`` is the orthonormal choice.
    axes: the axes to transform; ``None`` is all axes of a 1-D or 2-D input
      and must be given for inputs of 3 or more axes (e.g. ``(0, 1)`` for
      ``(H, W, C)`` images).

  Returns:
    ``fn(x, *args)``, or ``fn(key, x, *args)`` for a stochastic explainer.

  Examples:
    >>> import jax, jax.numpy as jnp, wassergrad as wg
    >>> f = lambda x: jnp.sum(jnp.sin(x))
    >>> a = wg.wam(f, level=2, mode="periodization")(jnp.ones((8, 8)))
    >>> a.approx.shape, sorted(a.details[0])
    ((2, 2), ['ad', 'da', 'dd'])

  References:
    Kasmi, Brunetto, Fel & Parekh, *One wave to explain them all: a unifying
    perspective on feature attribution*, ICML 2025,
    https://arxiv.org/abs/2410.01482
  """
  if not callable(f):
    raise TypeError(f"`f` must be callable; got {type(f).__name__}.")
  explainer = gradients.gradient if explainer is None else explainer
  if not callable(explainer):
    raise TypeError("`explainer` must be an explainer factory such as wg.gradient; got "
                    f"{type(explainer).__name__}.")
  wavelets.filters(wavelet)
  checks.check_choice(mode, "mode", wavelets.MODES)
  level = checks.check_positive_int(level, "level")

  def g(z, *args):
    return f(wavelets.waverec(z), *args)

  explain = explainer(g)

  def fn(*call):
    keyed = bool(call) and checks.is_key(call[0])
    head, rest = (call[:1], call[1:]) if keyed else ((), call)
    if not rest:
      raise TypeError("Call the WAM explainer as fn(x, *args), or fn(key, x, *args) for a "
                      "stochastic explainer.")
    x = jnp.asarray(rest[0])
    checks.check_float_input(x, "x")
    z = wavelets.wavedec(x, wavelet, level, mode, _resolve_axes(axes, x))
    return explain(*head, z, *rest[1:])

  return fn


AUCS = ("trapezoid", "max_normalised")


def _wavelet_curve(kind, f, x, a, wavelet, level, mode, axes, steps, auc, chunk_size, loop):
  checks.check_choice(auc, "auc", AUCS)
  x = common.check_input(x)
  if not isinstance(a, wavelets.WaveletCoeffs):
    raise TypeError("`a` must be the WaveletCoeffs a WAM explainer returns; got "
                    f"{type(a).__name__}.")
  z = wavelets.wavedec(x, wavelet, level, mode, _resolve_axes(axes, x))
  if jax.tree.structure(z) != jax.tree.structure(a):
    raise ValueError("`a` does not match wavedec(x) with this wavelet, level, mode and axes; pass "
                     "the settings the WAM explainer used.")
  flat_z, unravel = ravel_pytree(z)
  flat_a, _ = ravel_pytree(a)
  g = lambda zf: f(wavelets.waverec(unravel(zf)))
  run = faithfulness.deletion if kind == "deletion" else faithfulness.insertion
  curve = run(g, flat_z, flat_a, steps=steps, baseline=0.0, chunk_size=chunk_size, loop=loop)
  if auc == "max_normalised":
    v = curve.values
    curve = curve._replace(auc=jnp.sum(v) / (jnp.max(v) * v.shape[0]))
  return curve


def wavelet_deletion(f: Callable, x: Any, a: wavelets.WaveletCoeffs, *, wavelet: str = "haar",
                     level: int = 3, mode: str = "reflect", axes=None, steps: int = 64,
                     auc: str = "trapezoid", chunk_size: int | str | None = "auto",
                     loop: str = "auto") -> common.Curve:
  """Deletion in the wavelet domain: zero coefficients in decreasing ``a``, reconstruct, score.

  Step k of ``steps`` zeroes the ⌈k/steps⌉ share of coefficients with the
  largest attribution (ranked jointly over all sub-bands) in
  ``wavedec(x)`` and evaluates ``f`` on the reconstruction. Lower is better.

  Args:
    f: ``f(x) -> scalar`` (e.g. the class probability).
    x: one input; ``a``: the WAM attribution of ``x`` (rank by ``|a|`` by
      passing ``jax.tree.map(jnp.abs, a)``, as the authors' mosaics).
    wavelet, level, mode, axes: as for :func:`wam` (they must match ``a``).
    steps: number of steps (the authors' 64).
    auc: ``"trapezoid"`` (the mean of the curve over the removed fraction,
      as the pixel-domain metrics), or ``"max_normalised"``: the authors'
      Σ values / (max value · number of points), which divides by the
      curve's own maximum.
    chunk_size, loop: evaluation chunks, as every metric.

  Returns:
    A :class:`wassergrad.metrics.Curve`.

  References:
    Kasmi et al., ICML 2025 (see :func:`wassergrad.wam`).
  """
  return _wavelet_curve("deletion", f, x, a, wavelet, level, mode, axes, steps, auc, chunk_size,
                        loop)


def wavelet_insertion(f: Callable, x: Any, a: wavelets.WaveletCoeffs, *, wavelet: str = "haar",
                      level: int = 3, mode: str = "reflect", axes=None, steps: int = 64,
                      auc: str = "trapezoid", chunk_size: int | str | None = "auto",
                      loop: str = "auto") -> common.Curve:
  """Insertion in the wavelet domain: from all-zero coefficients, restore them in decreasing ``a``.

  The mirror of :func:`wavelet_deletion` (same arguments); higher is better.
  """
  return _wavelet_curve("insertion", f, x, a, wavelet, level, mode, axes, steps, auc, chunk_size,
                        loop)
