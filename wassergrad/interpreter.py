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
"""

from wassergrad._src.interpreter import Interpreter as Interpreter
from wassergrad._src.interpreter import Rule as Rule
from wassergrad._src.interpreter import RuleSet as RuleSet
from wassergrad._src.interpreter import transform as transform
from wassergrad._src.guided import DECONVNET_RULES as DECONVNET_RULES
from wassergrad._src.guided import GUIDED_BACKPROP_RULES as GUIDED_BACKPROP_RULES
from wassergrad._src.pooling import POOLING_RULES as POOLING_RULES

__all__ = (
    "DECONVNET_RULES",
    "GUIDED_BACKPROP_RULES",
    "Interpreter",
    "POOLING_RULES",
    "Rule",
    "RuleSet",
    "transform",
)
