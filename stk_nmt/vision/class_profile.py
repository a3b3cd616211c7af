"""The long-tail profile: how many training images each class keeps, and the shot groups.

CIFAR-100-LT (Cao et al. 2019, the LDAM-DRW code) keeps, for class i of C,
    n_i = int(img_max * (1 / IF) ** (i / (C - 1)))
images (the "exponential" profile), IF = n_0 / n_{C-1} the imbalance factor. The same profile
makes any balanced dataset long-tailed (the offline digits use it too).
Evaluation splits classes by their training count: many-shot (> 100), medium-shot (20..100),
few-shot (< 20), the convention of Liu et al. 2019 (OLTR) used by every long-tail paper since.
"""

from __future__ import annotations

import math
import numbers
from typing import Dict, List, Sequence

MANY_SHOT_ABOVE = 100  # many-shot: strictly more than 100 training images
FEW_SHOT_BELOW = 20  # few-shot: strictly fewer than 20


def check_imbalance_factor(imb_factor) -> float:
    if isinstance(imb_factor, bool) or not isinstance(imb_factor, numbers.Real) or not math.isfinite(imb_factor) or imb_factor <= 1:
        raise ValueError(
            f"imb_factor must be a finite number > 1 (the ratio of the largest to the smallest class), got imb_factor={imb_factor!r}"
        )
    return float(imb_factor)


def long_tail_counts(num_classes: int, imb_factor: float, img_max: int) -> List[int]:
    """Images kept per class under the exponential profile (LDAM-DRW's get_img_num_per_cls)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got num_classes={num_classes!r}")
    if isinstance(img_max, bool) or not isinstance(img_max, numbers.Integral) or img_max < 1:
        raise ValueError(f"img_max must be an integer >= 1, got img_max={img_max!r}")
    ratio = 1.0 / check_imbalance_factor(imb_factor)
    # Same floating-point expression as the reference code, so int() truncates identically.
    return [int(img_max * (ratio ** (i / (num_classes - 1.0)))) for i in range(num_classes)]


def shot_groups(class_counts: Sequence[int]) -> Dict[str, List[int]]:
    """Class indices of the many / medium / few-shot groups given the training counts."""
    groups: Dict[str, List[int]] = {"many": [], "medium": [], "few": []}
    for c, n in enumerate(class_counts):
        if n > MANY_SHOT_ABOVE:
            groups["many"].append(c)
        elif n < FEW_SHOT_BELOW:
            groups["few"].append(c)
        else:
            groups["medium"].append(c)
    return groups
