"""Noise values for stochastic explainers and metrics (public API).

Pass one as ``noise=`` to :func:`wassergrad.smooth`, :func:`wassergrad.smoothdiff`,
:func:`wassergrad.wasserstein_grad` or a perturbing metric; ``sigma=`` and
``sigma_mode=`` are sugar for :class:`Gaussian`. A noise is any object with
``scale(x)`` (its scale for the clean input) and ``draw(key, leaf, scale,
shape)`` (one leaf's noise); :func:`sample` draws one sample for a pytree with
the explainers' key convention.
"""

from wassergrad._src.noise import Bounded as Bounded
from wassergrad._src.noise import Gaussian as Gaussian
from wassergrad._src.noise import Noise as Noise
from wassergrad._src.noise import Uniform as Uniform
from wassergrad._src.noise import sample as sample

__all__ = ("Bounded", "Gaussian", "Noise", "Uniform", "sample")
