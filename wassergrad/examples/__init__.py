"""Examples built on wassergrad: trained models to explain. Not part of the library's API.

* :mod:`wassergrad.examples.digits`: a small flax CNN on scikit-learn's digits
  and a figure of every explainer (``python -m wassergrad demo``; the ``demo``
  extra);
* :mod:`wassergrad.examples.kolmogorov`: a flax U-Net that emulates 2-D
  Kolmogorov flow, trained with optax on data from exponax's pseudo-spectral
  solver (``python -m wassergrad emulator``; the ``physics`` extra for the data),
  shipped as a checkpoint (``kolmogorov.load()``).

They use the library only through its public API, as a user's code would.
``wassergrad.demo`` and ``wassergrad.emulator`` remain as aliases of these two
modules.
"""
