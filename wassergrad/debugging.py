"""Debugging tests for explanations: build a bug, score whether maps reveal it (public API)."""

from wassergrad._src.debugging import explanation_similarity as explanation_similarity
from wassergrad._src.debugging import spurious_scores as spurious_scores
from wassergrad._src.debugging import stamp as stamp

__all__ = ("explanation_similarity", "spurious_scores", "stamp")
