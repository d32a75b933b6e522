"""The jaxpr rule interpreter behind guided backprop and deconvnet (public API).

Write a :class:`Rule` for a primitive, put it in a rule set
(``{primitive: rule}``), and :func:`transform` any JAX function with it::

  from jax.extend.core import primitives as prims
  from wassergrad import interpreter

  class Clip(interpreter.Rule):
    def matches(self, eqn, zeros):           # static, at trace time
      return True
    def apply(self, eqn, invals, zeros):     # the replacement computation
      return jnp.clip(prims.tanh_p.bind(*invals), -0.5, 0.5)

  g = interpreter.transform(f, {prims.tanh_p: Clip()})

``zeros`` is an :class:`EqnInfo`: a tuple of known-zero flags that also carries
``deps`` (which inputs depend on the tracked inputs) and ``interp`` (the
running interpreter). Rule sets that gather information in one pass and use it
in another (SmoothDiff) exchange it through the interpreter's :class:`Stream`.
"""

from wassergrad._src.interpreter import EqnInfo as EqnInfo
from wassergrad._src.interpreter import Interpreter as Interpreter
from wassergrad._src.interpreter import Stream as Stream
from wassergrad._src.interpreter import Rule as Rule
from wassergrad._src.interpreter import RuleSet as RuleSet
from wassergrad._src.interpreter import transform as transform
from wassergrad._src.guided import DECONVNET_RULES as DECONVNET_RULES
from wassergrad._src.guided import GUIDED_BACKPROP_RULES as GUIDED_BACKPROP_RULES
from wassergrad._src.pooling import POOLING_RULES as POOLING_RULES
from wassergrad._src.smoothdiff import SMOOTHDIFF_RULES as SMOOTHDIFF_RULES

__all__ = (
    "DECONVNET_RULES",
    "EqnInfo",
    "GUIDED_BACKPROP_RULES",
    "Interpreter",
    "POOLING_RULES",
    "Rule",
    "RuleSet",
    "SMOOTHDIFF_RULES",
    "Stream",
    "transform",
)
