"""build_loss: the per-sample classification loss called by name, for adapters that take it from a flag.

Every loss here maps (logits (B, C), labels (B,)) -> (B,) fp32, one loss per sample, so that any
aggregate (average, AT_k, ST_k...) can combine them.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from .checks import class_count_tensor
from .cross_entropy import CrossEntropy
from .ldam import LDAM
from .logit_adjusted import LogitAdjusted
from .topk_hinge import BalancedTopKHinge, ImbalancedTopKHinge

LOSSES = ("ce", "logit-adjusted", "balanced-softmax", "ldam", "topk-hinge", "topk-hinge-imbalanced")
# Losses whose margins assume a cosine (normalised) last layer.
COSINE_LOSSES = ("ldam", "topk-hinge-imbalanced")


def build_loss(
    name: str,
    class_counts: Optional[Sequence[int]] = None,
    *,
    tau: float = 1.0,
    max_m: float = 0.5,
    scale: float = 30.0,
    topk: int = 5,
    epsilon: float = 0.2,
    n_samples: int = 5,
) -> nn.Module:
    """The per-sample loss called `name` (one of LOSSES); class_counts = training items per class.

    tau: logit adjustment. max_m, scale: LDAM and the imbalanced top-K hinge. topk (the K of the
    top-K metric), epsilon, n_samples: the top-K hinge losses' perturbed operator.
    """
    if name == "ce":
        return CrossEntropy()
    if name == "logit-adjusted":
        return LogitAdjusted(class_counts, tau=tau)
    if name == "balanced-softmax":
        return LogitAdjusted(class_counts, tau=1.0)
    if name == "ldam":
        return LDAM(class_counts, max_m=max_m, scale=scale)
    if name == "topk-hinge":
        return BalancedTopKHinge(topk, epsilon, n_samples, reduction="none")
    if name == "topk-hinge-imbalanced":
        return ImbalancedTopKHinge(topk, epsilon, max_m, class_count_tensor(class_counts), scale=scale,
                                   n_samples=n_samples, reduction="none")
    raise ValueError(f"loss must be one of {LOSSES}, got loss={name!r}")
