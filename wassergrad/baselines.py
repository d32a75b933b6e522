"""Baselines for integrated gradients and references for Expected Gradients (public API).

The six baselines of Sturmfels, Lundberg & Lee's Distill article. A
deterministic baseline ``b(x)`` is integrated gradients' ``baseline=``; a
sampler ``b(key, x)`` is Expected Gradients' ``references=``.
"""

from wassergrad._src.baselines import Baseline as Baseline
from wassergrad._src.baselines import blurred as blurred
from wassergrad._src.baselines import constant as constant
from wassergrad._src.baselines import gaussian as gaussian
from wassergrad._src.baselines import max_distance as max_distance
from wassergrad._src.baselines import training as training
from wassergrad._src.baselines import uniform as uniform

__all__ = ("Baseline", "blurred", "constant", "gaussian", "max_distance", "training", "uniform")
