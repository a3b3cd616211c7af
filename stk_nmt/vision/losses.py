"""Deprecated path: the per-sample classification losses live in stk_nmt.core.losses.

They work on any (B, C) logits, so they belong to the core's individual-loss axis; this module
re-exports them for code that imports stk_nmt.vision.losses.
"""

from stk_nmt.core.losses import (  # noqa: F401
    COSINE_LOSSES,
    LDAM,
    LOSSES,
    CrossEntropy,
    LogitAdjusted,
    build_loss,
    check_logits_labels,
    class_count_tensor,
    cross_entropy,
    ldam_loss,
    ldam_margins,
    logit_adjusted_cross_entropy,
)
