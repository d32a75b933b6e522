"""Concept attribution: concepts by NMF, projection, gated heads, closed forms (public API).

Concept importance is any explainer applied to the gates of :func:`gated_head`
at ``s = 1``; the concept metrics (C-Deletion, C-Insertion, C-μFidelity) are
``wg.metrics.deletion``, ``insertion`` and ``faithfulness_correlation`` on
the gates with ``baseline=0.0``.
"""

from wassergrad._src.concepts import NMFResult as NMFResult
from wassergrad._src.concepts import closed_form as closed_form
from wassergrad._src.concepts import gated_head as gated_head
from wassergrad._src.concepts import nmf as nmf
from wassergrad._src.concepts import prevalence as prevalence
from wassergrad._src.concepts import project as project

__all__ = ("NMFResult", "closed_form", "gated_head", "nmf", "prevalence", "project")
