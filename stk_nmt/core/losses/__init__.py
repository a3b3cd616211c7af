"""Individual losses: one loss per item (token, image, example), for any aggregate to combine.

- topk/: the perturbed top-k operator and the smoothed top-K hinge losses, balanced and
  imbalanced, on any (B, C) scores (Garcin et al. 2022), one concept per module.
- cross_entropy.py, logit_adjusted.py (and the balanced softmax), ldam.py: classification losses
  of any (B, C) logits, one fp32 loss per sample; checks.py holds their argument checks and
  factory.py builds them by name (LOSSES).
- pointwise.py: losses of a real score against a target (logistic, hinge, square, absolute).
"""

from .checks import check_logits_labels, class_count_tensor
from .cross_entropy import CrossEntropy, cross_entropy
from .factory import COSINE_LOSSES, LOSSES, build_loss
from .ldam import LDAM, ldam_loss, ldam_margins
from .logit_adjusted import LogitAdjusted, logit_adjusted_cross_entropy
from .pointwise import POINTWISE_LOSSES, absolute_loss, hinge_loss, logistic_loss, square_loss
from .topk import (
    BalancedTopKHinge,
    ImbalancedTopKHinge,
    PerturbedTopK,
    balanced_topk_hinge,
    class_margins,
    imbalanced_topk_hinge,
    noised_topk_hinge,
    perturbed_topk,
)

__all__ = [
    "BalancedTopKHinge", "ImbalancedTopKHinge", "PerturbedTopK", "balanced_topk_hinge", "class_margins",
    "imbalanced_topk_hinge", "noised_topk_hinge", "perturbed_topk",
    "COSINE_LOSSES", "LDAM", "LOSSES", "CrossEntropy", "LogitAdjusted", "build_loss", "check_logits_labels",
    "class_count_tensor", "cross_entropy", "ldam_loss", "ldam_margins", "logit_adjusted_cross_entropy",
    "POINTWISE_LOSSES", "absolute_loss", "hinge_loss", "logistic_loss", "square_loss",
]
