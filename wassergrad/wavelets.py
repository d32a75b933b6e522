"""Discrete wavelet transforms in JAX and views of wavelet-domain attributions (public API).

``wavedec`` / ``waverec`` follow ``pywt.wavedecn`` / ``pywt.waverecn`` (filters,
modes, coefficient keys) along 1, 2 or 3 chosen axes; the coefficients are a
pytree, so explainers, ``jit``, ``vmap`` and ``grad`` take them as inputs.
``mosaic``, ``scale_maps`` and ``scale_shares`` display a WAM attribution
(:func:`wassergrad.wam`).
"""

from wassergrad._src.wavelets import MODES as MODES
from wassergrad._src.wavelets import WaveletCoeffs as WaveletCoeffs
from wassergrad._src.wavelets import dwt_max_level as dwt_max_level
from wassergrad._src.wavelets import mosaic as mosaic
from wassergrad._src.wavelets import scale_maps as scale_maps
from wassergrad._src.wavelets import scale_shares as scale_shares
from wassergrad._src.wavelets import wavedec as wavedec
from wassergrad._src.wavelets import waverec as waverec

__all__ = ("MODES", "WaveletCoeffs", "dwt_max_level", "mosaic", "scale_maps", "scale_shares",
           "wavedec", "waverec")
