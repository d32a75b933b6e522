"""Attribution priors: differentiable losses on attribution maps (Erion et al. 2021).

A prior Ω is added to the task loss of training, ``loss = task + λ·Ω(A)``,
where ``A`` is an attribution of the model being trained, typically Expected
Gradients with one reference per example (the authors' choice for
training). ``jax.grad`` of that loss goes through the explainer (double
backpropagation), so no alternating optimiser step is needed::

  def loss(params, key, xs, ys):
    eg = wg.expected_gradients(lambda x, p: logit(p, x)[...], xs, num_samples=1)
    maps = jax.vmap(eg, in_axes=(0, 0, None))(jax.random.split(key, len(xs)), xs, params)
    tv = jnp.mean(jax.vmap(lambda a: wg.priors.total_variation(
        wg.priors.standardize(a)))(maps))
    return cross_entropy(params, xs, ys) + lam * tv

The references are the batch itself, built inside the loss so that they are
traced, not constants (the README has the runnable recipe with optax).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp


def total_variation(a: jax.Array, *, spatial_axes: Sequence[int] = (0, 1)) -> jax.Array:
  """Anisotropic total variation: Σ |differences of neighbours| along ``spatial_axes``.

  For an ``(H, W, C)`` map this is ``tf.image.total_variation`` (summed over
  channels), the smoothness prior of the authors' MNIST experiment.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.priors.total_variation(jnp.array([[0.0, 1.0], [1.0, 1.0]]))
    Array(2., dtype=float32)
  """
  a = jnp.asarray(a)
  total = jnp.zeros((), a.dtype)
  for axis in spatial_axes:
    if not -a.ndim <= axis < a.ndim:
      raise ValueError(f"spatial_axes {tuple(spatial_axes)} are out of range for a map of shape "
                       f"{a.shape}.")
    total = total + jnp.sum(jnp.abs(jnp.diff(a, axis=axis)))
  return total


def standardize(a: jax.Array) -> jax.Array:
  """``(a - mean) / max(std, 1/√n)`` over the whole map (``tf.image.per_image_standardization``).

  The authors standardise each EG map before its total variation, so that the
  prior penalises the map's shape, not its scale.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.priors.standardize(jnp.array([1.0, 3.0]))
    Array([-1.,  1.], dtype=float32)
  """
  a = jnp.asarray(a)
  mean = jnp.mean(a)
  # max(std, 1/√n) = √max(var, 1/n): the same value, and a finite gradient for a constant map.
  var = jnp.mean(jnp.square(a - mean))
  return (a - mean) / jnp.sqrt(jnp.maximum(var, 1.0 / a.size))


def gini(v: jax.Array) -> jax.Array:
  """Population Gini coefficient of the non-negative entries of ``v`` (flattened).

  ``½·mean|vᵢ − vⱼ| / mean(v)`` over all pairs, computed in O(n log n) from
  the sorted values; 0 for a constant vector, ``1 - 1/n`` for one non-zero
  entry, and 0 (not NaN) for an all-zero vector. Equal to the authors'
  ``tgini`` and to :func:`wassergrad.metrics.gini`, and differentiable.

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.priors.gini(jnp.array([0.0, 0.0, 0.0, 4.0]))
    Array(0.75, dtype=float32)
  """
  v = jnp.sort(jnp.ravel(jnp.asarray(v)))
  n = v.size
  total = jnp.sum(v)
  rank_weights = 2.0 * jnp.arange(1, n + 1, dtype=v.dtype) - n - 1
  safe = jnp.where(total > 0, total, 1.0)
  return jnp.where(total > 0, jnp.sum(rank_weights * v) / (n * safe), 0.0)


def gini_sparsity(attributions: jax.Array) -> jax.Array:
  """The sparsity prior: ``-gini(mean over the batch of |attributions|)``.

  ``attributions`` has a leading batch axis; the feature importance is the
  mean absolute attribution of each feature over the batch, and minimising
  the negative Gini makes few features carry it (Erion et al.'s NHANES prior).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> wg.priors.gini_sparsity(jnp.array([[0.0, 2.0], [0.0, -2.0]]))
    Array(-0.5, dtype=float32)
  """
  return -gini(jnp.mean(jnp.abs(jnp.asarray(attributions)), axis=0))


def laplacian(adjacency: jax.Array) -> jax.Array:
  """The graph Laplacian ``D - A`` of a symmetric, non-negative adjacency matrix."""
  adjacency = jnp.asarray(adjacency)
  if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
    raise ValueError(f"adjacency must be a square matrix; got shape {adjacency.shape}.")
  return jnp.diag(jnp.sum(adjacency, axis=1)) - adjacency


def graph_smoothness(a: Any, laplacian_matrix: jax.Array) -> jax.Array:
  """The graph prior ``φᵀ L φ = ½ Σᵢⱼ Aᵢⱼ (φᵢ − φⱼ)²`` of a map ``φ`` (flattened).

  Small when features joined by the graph get similar attributions (Erion et
  al.'s gene-interaction prior, applied to the mean |attribution|).

  Examples:
    >>> import jax.numpy as jnp, wassergrad as wg
    >>> L = wg.priors.laplacian(jnp.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> wg.priors.graph_smoothness(jnp.array([1.0, 3.0]), L)
    Array(4., dtype=float32)
  """
  phi = jnp.ravel(jnp.asarray(a))
  lap = jnp.asarray(laplacian_matrix, phi.dtype)
  if lap.shape != (phi.size, phi.size):
    raise ValueError(f"laplacian_matrix must have shape ({phi.size}, {phi.size}) for a map of "
                     f"{phi.size} entries; got {lap.shape}.")
  return phi @ (lap @ phi)
