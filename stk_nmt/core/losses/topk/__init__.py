"""The top-K operator and losses of Garcin et al. (ICML 2022), one concept per module:

- checks.py: argument checks (scores, k, epsilon, S, noise, noise mode).
- chunks.py: rows per chunk of the (rows, L, S) noise buffers.
- candidates.py: each row's candidate classes for the lazy and truncated paths, and their packing.
- dense.py: dense noise, pytopk's operator and random stream (its selection: core/selection.py).
- lazy.py: lazy noise, drawn only where it can matter (exact in distribution).
- truncated.py: truncated noise, only near each row's k-th largest score (within a tolerance).
- perturbed.py: the operator itself (perturbed_topk, PerturbedTopK; select_draws picks the path).
- hinge.py: the smoothed top-K hinge losses, balanced and imbalanced.

Each module imports only the ones listed before it (perturbed.py the noise paths, hinge.py the
operator): no import cycle (tests/test_import_cycles.py).
"""

from .hinge import (
    BalancedTopKHinge,
    ImbalancedTopKHinge,
    balanced_topk_hinge,
    class_margins,
    imbalanced_topk_hinge,
    noised_topk_hinge,
)
from .perturbed import DEFAULT_TOLERANCE, NOISE_MODES, PerturbedTopK, perturbed_topk
from .truncated import truncation_margin

__all__ = [
    "BalancedTopKHinge", "ImbalancedTopKHinge", "PerturbedTopK", "balanced_topk_hinge", "class_margins",
    "imbalanced_topk_hinge", "noised_topk_hinge", "perturbed_topk", "DEFAULT_TOLERANCE", "NOISE_MODES",
    "truncation_margin",
]
