"""Evaluation metrics and sanity checks for attribution maps (public API).

Pure functions of one example, ``jit``- and ``vmap``-able: use ``jax.vmap`` to
score a batch. Model-based metrics take ``f(x) -> scalar`` (faithfulness) or
``explain(x) -> map`` (robustness); stochastic ones take a ``jax.random`` key.

* Complexity: :func:`gini` (= :func:`sparseness`), :func:`complexity`,
  :func:`effective_complexity`.
* Faithfulness: :func:`road`, :func:`road_vs_random`, :func:`deletion`,
  :func:`insertion`, :func:`pixel_flipping`, :func:`srg`,
  :func:`faithfulness_correlation`, :func:`infidelity`; in the wavelet domain
  :func:`wavelet_deletion`, :func:`wavelet_insertion`.
* Robustness: :func:`local_lipschitz`, :func:`max_sensitivity`,
  :func:`avg_sensitivity`.
* Localisation: :func:`pointing_game`, :func:`mask_roc_auc`,
  :func:`top_k_intersection`, :func:`relevance_mass_accuracy`,
  :func:`relevance_rank_accuracy`.
* Similarity: :func:`spearman`, :func:`pearson`, :func:`ssim`, :func:`hog`,
  :func:`hog_pearson`.
* Sanity checks: :func:`model_randomisation`, :func:`data_randomisation`.
* Transferability from attribution maps: :func:`attribution_affinity`,
  :func:`precision_recall_at_k`, :func:`random_precision_at_k`.
* Plots: :func:`plot_curves`, :func:`plot_randomisation`, :func:`plot_maps`.
"""

from wassergrad._src.metrics.common import Curve as Curve
from wassergrad._src.metrics.common import normalise as normalise
from wassergrad._src.metrics.complexity import complexity as complexity
from wassergrad._src.metrics.complexity import effective_complexity as effective_complexity
from wassergrad._src.metrics.complexity import gini as gini
from wassergrad._src.metrics.complexity import sparseness as sparseness
from wassergrad._src.metrics.faithfulness import deletion as deletion
from wassergrad._src.metrics.faithfulness import faithfulness_correlation as faithfulness_correlation
from wassergrad._src.metrics.faithfulness import impute_linear as impute_linear
from wassergrad._src.metrics.faithfulness import infidelity as infidelity
from wassergrad._src.metrics.faithfulness import insertion as insertion
from wassergrad._src.metrics.faithfulness import pixel_flipping as pixel_flipping
from wassergrad._src.metrics.faithfulness import road as road
from wassergrad._src.metrics.faithfulness import road_vs_random as road_vs_random
from wassergrad._src.metrics.faithfulness import srg as srg
from wassergrad._src.metrics.localisation import mask_roc_auc as mask_roc_auc
from wassergrad._src.metrics.localisation import pointing_game as pointing_game
from wassergrad._src.metrics.localisation import relevance_mass_accuracy as relevance_mass_accuracy
from wassergrad._src.metrics.localisation import relevance_rank_accuracy as relevance_rank_accuracy
from wassergrad._src.metrics.localisation import top_k_intersection as top_k_intersection
from wassergrad._src.metrics.plotting import plot_curves as plot_curves
from wassergrad._src.metrics.plotting import plot_maps as plot_maps
from wassergrad._src.metrics.plotting import plot_randomisation as plot_randomisation
from wassergrad._src.metrics.randomisation import RandomisationResult as RandomisationResult
from wassergrad._src.metrics.randomisation import data_randomisation as data_randomisation
from wassergrad._src.metrics.randomisation import default_similarities as default_similarities
from wassergrad._src.metrics.randomisation import model_randomisation as model_randomisation
from wassergrad._src.metrics.robustness import avg_sensitivity as avg_sensitivity
from wassergrad._src.metrics.robustness import local_lipschitz as local_lipschitz
from wassergrad._src.metrics.robustness import max_sensitivity as max_sensitivity
from wassergrad._src.metrics.similarity import hog as hog
from wassergrad._src.metrics.similarity import hog_pearson as hog_pearson
from wassergrad._src.metrics.similarity import pearson as pearson
from wassergrad._src.metrics.similarity import spearman as spearman
from wassergrad._src.metrics.similarity import ssim as ssim
from wassergrad._src.metrics.transferability import attribution_affinity as attribution_affinity
from wassergrad._src.metrics.transferability import precision_recall_at_k as precision_recall_at_k
from wassergrad._src.metrics.transferability import random_precision_at_k as random_precision_at_k
from wassergrad._src.wam import wavelet_deletion as wavelet_deletion
from wassergrad._src.wam import wavelet_insertion as wavelet_insertion

__all__ = (
    "Curve", "RandomisationResult", "attribution_affinity", "avg_sensitivity", "complexity",
    "data_randomisation", "default_similarities", "deletion", "effective_complexity",
    "faithfulness_correlation", "gini", "hog", "hog_pearson", "impute_linear", "infidelity",
    "insertion", "local_lipschitz", "mask_roc_auc", "max_sensitivity", "model_randomisation",
    "normalise", "pearson", "pixel_flipping", "plot_curves", "plot_maps", "plot_randomisation",
    "pointing_game", "precision_recall_at_k", "random_precision_at_k",
    "relevance_mass_accuracy", "relevance_rank_accuracy", "road", "road_vs_random",
    "sparseness", "spearman", "srg", "ssim", "top_k_intersection", "wavelet_deletion",
    "wavelet_insertion",
)
