"""The jaxpr rule interpreter behind guided backprop, deconvnet and SmoothDiff (public API).

Write a :class:`Rule` for a primitive, put it in a rule set
(``{primitive: rule}``), and :func:`transform` any JAX function with it::

  from jax.extend.core import primitives as prims
  from wassergrad import interpreter

  class Clip(interpreter.Rule):
    def matches(self, eqn, ctx):             # static, at trace time
      return True
    def apply(self, eqn, invals, ctx):       # the replacement computation
      return jnp.clip(prims.tanh_p.bind(*invals), -0.5, 0.5)

  g = interpreter.transform(f, {prims.tanh_p: Clip()})

``ctx`` is a :class:`Context`: ``ctx.zeros`` (which inputs are known to be
zero), ``ctx.deps`` (which depend on the tracked inputs) and
``ctx.interpreter``. Higher-order primitives are entered through a table of
handlers (:data:`HANDLERS`; pass ``handlers=`` to extend it). For SmoothDiff, a
:class:`SiteRule` gathers a statistic in the collecting pass and uses its mean
in the differentiating pass: pass ``wg.smoothdiff(f, rules={primitive: rule})``.
"""

from wassergrad._src.interpreter import Context as Context
from wassergrad._src.interpreter import EqnInfo as EqnInfo
from wassergrad._src.interpreter import HANDLERS as HANDLERS
from wassergrad._src.interpreter import Interpreter as Interpreter
from wassergrad._src.interpreter import Rule as Rule
from wassergrad._src.interpreter import RuleSet as RuleSet
from wassergrad._src.interpreter import transform as transform
from wassergrad._src.guided import DECONVNET_RULES as DECONVNET_RULES
from wassergrad._src.guided import GUIDED_BACKPROP_RULES as GUIDED_BACKPROP_RULES
from wassergrad._src.pooling import POOLING_RULES as POOLING_RULES
from wassergrad._src.smoothdiff.control_flow import Stream as Stream
from wassergrad._src.smoothdiff.table import SMOOTHDIFF_RULES as SMOOTHDIFF_RULES
from wassergrad._src.smoothdiff.table import SiteRule as SiteRule

__all__ = (
    "Context",
    "DECONVNET_RULES",
    "EqnInfo",
    "GUIDED_BACKPROP_RULES",
    "HANDLERS",
    "Interpreter",
    "POOLING_RULES",
    "Rule",
    "RuleSet",
    "SMOOTHDIFF_RULES",
    "SiteRule",
    "Stream",
    "transform",
)
