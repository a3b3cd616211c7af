"""Individual losses: one loss per item (token, image, example), for any aggregate to combine.

- perturbed_topk.py: the perturbed top-k operator (Garcin et al. 2022).
- topk_hinge.py: the smoothed top-K hinge losses, balanced and imbalanced, on any (B, C) scores.
"""

from .perturbed_topk import PerturbedTopK, perturbed_topk
from .topk_hinge import (
    BalancedTopKHinge,
    ImbalancedTopKHinge,
    balanced_topk_hinge,
    class_margins,
    imbalanced_topk_hinge,
    noised_topk_hinge,
)

__all__ = [
    "BalancedTopKHinge", "ImbalancedTopKHinge", "PerturbedTopK", "balanced_topk_hinge", "class_margins",
    "imbalanced_topk_hinge", "noised_topk_hinge", "perturbed_topk",
]
