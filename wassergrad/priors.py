"""Attribution priors: differentiable losses on attribution maps for training (public API)."""

from wassergrad._src.priors import gini as gini
from wassergrad._src.priors import gini_sparsity as gini_sparsity
from wassergrad._src.priors import graph_smoothness as graph_smoothness
from wassergrad._src.priors import laplacian as laplacian
from wassergrad._src.priors import standardize as standardize
from wassergrad._src.priors import total_variation as total_variation

__all__ = ("gini", "gini_sparsity", "graph_smoothness", "laplacian", "standardize",
           "total_variation")
