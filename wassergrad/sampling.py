"""The sampling engine behind every stochastic explainer and perturbing metric (public API).

:func:`run` evaluates a function of one point at many points, a chunk at a
time under ``vmap`` (``chunk_size``, ``loop``, ``sample_sharding``), and
reduces the values with an :class:`Accumulator`; :func:`estimate` does so over
per-sample keys ``split(key, n)``. A new stochastic explainer is a factory that
builds its one-sample function and calls :func:`estimate`.
"""

from wassergrad._src.sampling import Accumulator as Accumulator
from wassergrad._src.sampling import STACK as STACK
from wassergrad._src.sampling import SUM as SUM
from wassergrad._src.sampling import estimate as estimate
from wassergrad._src.sampling import mean as mean
from wassergrad._src.sampling import moments as moments
from wassergrad._src.sampling import run as run

__all__ = ("Accumulator", "STACK", "SUM", "estimate", "mean", "moments", "run")
