"""build_loss: the per-sample classification loss called by name, for adapters that take it from a flag.

Every loss here maps (logits (B, C), labels (B,)) -> (B,) fp32, one loss per sample, so that any
aggregate (average, AT_k, ST_k...) can combine them.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from ..defaults import (
    IMBALANCED_EPSILON,
    IMBALANCED_MAX_M,
    IMBALANCED_SCALE,
    LDAM_MAX_M,
    LDAM_SCALE,
    LOGIT_ADJUSTED_TAU,
    TOPK_EPSILON,
    TOPK_K,
    TOPK_SAMPLES,
)
from .checks import class_count_tensor
from .cross_entropy import CrossEntropy
from .ldam import LDAM
from .logit_adjusted import LogitAdjusted
from .topk import BalancedTopKHinge, ImbalancedTopKHinge

LOSSES = ("ce", "logit-adjusted", "balanced-softmax", "ldam", "topk-hinge", "topk-hinge-imbalanced")
# Losses whose margins assume a cosine (normalised) last layer.
COSINE_LOSSES = ("ldam", "topk-hinge-imbalanced")


def build_loss(
    name: str,
    class_counts: Optional[Sequence[int]] = None,
    *,
    tau: float = LOGIT_ADJUSTED_TAU,
    max_m: Optional[float] = None,
    scale: Optional[float] = None,
    topk: int = TOPK_K,
    epsilon: Optional[float] = None,
    n_samples: int = TOPK_SAMPLES,
) -> nn.Module:
    """The per-sample loss called `name` (one of LOSSES); class_counts = training items per class.

    tau: logit adjustment. max_m, scale: LDAM and the imbalanced top-K hinge. topk (the K of the
    top-K metric), epsilon, n_samples: the top-K hinge losses' perturbed operator. max_m, scale and
    epsilon serve losses with different defaults: None takes the named loss's own (core/defaults.py),
    the same as its class's, so a loss built here equals the one built directly.
    """
    if name == "ce":
        return CrossEntropy()
    if name == "logit-adjusted":
        return LogitAdjusted(class_counts, tau=tau)
    if name == "balanced-softmax":
        return LogitAdjusted(class_counts, tau=1.0)
    if name == "ldam":
        return LDAM(class_counts, max_m=_or(max_m, LDAM_MAX_M), scale=_or(scale, LDAM_SCALE))
    if name == "topk-hinge":
        return BalancedTopKHinge(topk, _or(epsilon, TOPK_EPSILON), n_samples, reduction="none")
    if name == "topk-hinge-imbalanced":
        return ImbalancedTopKHinge(topk, _or(epsilon, IMBALANCED_EPSILON), _or(max_m, IMBALANCED_MAX_M),
                                   class_count_tensor(class_counts), scale=_or(scale, IMBALANCED_SCALE),
                                   n_samples=n_samples, reduction="none")
    raise ValueError(f"loss must be one of {LOSSES}, got loss={name!r}")


def _or(value, default):
    return default if value is None else value
