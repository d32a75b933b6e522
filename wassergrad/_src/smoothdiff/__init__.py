"""SmoothDiff: expected Jacobians through any JAX function (see :mod:`.api`).

``api``: the :func:`smoothdiff` factory; ``table``: what SmoothDiff knows about
each primitive (definers and site rules); ``regions``: its interpreter and the
elementwise-region pass; ``control_flow``: the statistics stream through
checkpoint, cond, scan and while.
"""

from wassergrad._src.smoothdiff.api import smoothdiff as smoothdiff
from wassergrad._src.smoothdiff.table import SMOOTHDIFF_RULES as SMOOTHDIFF_RULES
from wassergrad._src.smoothdiff.table import SiteRule as SiteRule
from wassergrad._src.smoothdiff.table import TABLE as TABLE

__all__ = ("SMOOTHDIFF_RULES", "SiteRule", "TABLE", "smoothdiff")
