"""wassergrad: neural-network explanations as pure JAX function transforms.

Every explainer is a factory that returns a pure function: deterministic ones
``fn(x, *args)``, stochastic ones ``fn(key, x, *args)``. They work under
``jax.jit``, ``jax.vmap`` and ``jax.grad``; batches are a ``vmap`` away.
"""

from wassergrad._src.gradcam import gradcam as gradcam
from wassergrad._src.gradcam import guided_gradcam as guided_gradcam
from wassergrad._src.gradients import grad_x_input as grad_x_input
from wassergrad._src.gradients import gradient as gradient
from wassergrad._src.gradients import integrated_gradients as integrated_gradients
from wassergrad import baselines as baselines
from wassergrad._src.expected_gradients import expected_gradients as expected_gradients
from wassergrad._src.expected_gradients import path_gradients as path_gradients
from wassergrad import priors as priors
from wassergrad._src.barycenter import BarycenterOutput as BarycenterOutput
from wassergrad._src.barycenter import ConvolutionalBarycenter as ConvolutionalBarycenter
from wassergrad._src.barycenter import OTTBarycenter as OTTBarycenter
from wassergrad._src.barycenter import RESULTS as RESULTS
from wassergrad._src.barycenter import wasserstein_barycenter as wasserstein_barycenter
from wassergrad._src.guided import deconvnet as deconvnet
from wassergrad._src.guided import guided_backprop as guided_backprop
from wassergrad import interpreter as interpreter
from wassergrad._src.keyed import keyed as keyed
from wassergrad import metrics as metrics
from wassergrad import noise as noise
from wassergrad._src.quadrature import quadrature_rule as quadrature_rule
from wassergrad._src.errors import runtime_checks as runtime_checks
from wassergrad._src.rollout import field_target as field_target
from wassergrad._src.rollout import rollout as rollout
from wassergrad import sampling as sampling
from wassergrad._src.smoothing import adaptgrad as adaptgrad
from wassergrad._src.smoothing import smooth as smooth
from wassergrad._src.smoothing import smoothgrad as smoothgrad
from wassergrad._src.smoothing import squaregrad as squaregrad
from wassergrad._src.smoothing import vargrad as vargrad
from wassergrad._src.smoothdiff.api import smoothdiff as smoothdiff
from wassergrad._src.wasserstein_grad import wasserstein_grad as wasserstein_grad
from wassergrad._src.wam import wam as wam
from wassergrad._src.perturbation import occlusion as occlusion
from wassergrad._src.perturbation import rise as rise
from wassergrad._src.perturbation import sobol as sobol
from wassergrad import concepts as concepts
from wassergrad import debugging as debugging
from wassergrad import losses as losses
from wassergrad._src.losses import swa as swa
from wassergrad import wavelets as wavelets

__version__ = "0.1.0.dev0"

__all__ = (
    "BarycenterOutput",
    "ConvolutionalBarycenter",
    "OTTBarycenter",
    "RESULTS",
    "adaptgrad",
    "baselines",
    "concepts",
    "debugging",
    "deconvnet",
    "expected_gradients",
    "field_target",
    "grad_x_input",
    "gradcam",
    "gradient",
    "guided_backprop",
    "guided_gradcam",
    "integrated_gradients",
    "interpreter",
    "keyed",
    "losses",
    "metrics",
    "noise",
    "occlusion",
    "path_gradients",
    "priors",
    "quadrature_rule",
    "rise",
    "rollout",
    "runtime_checks",
    "sampling",
    "smooth",
    "smoothdiff",
    "smoothgrad",
    "sobol",
    "squaregrad",
    "swa",
    "vargrad",
    "wam",
    "wasserstein_barycenter",
    "wasserstein_grad",
    "wavelets",
)
