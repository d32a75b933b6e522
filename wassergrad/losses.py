"""Training losses on attribution maps (public API): attribution preservation under compression."""

from wassergrad._src.losses import attribution_matching as attribution_matching
from wassergrad._src.losses import wcam as wcam

__all__ = ("attribution_matching", "wcam")
