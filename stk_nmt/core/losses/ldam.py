"""LDAM (Cao et al. 2019) per sample: CE(scale * (logits - m_y e_y), y).

Margins m_c proportional to n_c^(-1/4), the largest equal to max_m. Meant for a normalised
(cosine) last layer.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import NO_IGNORED_LABEL, check_logits_labels, check_num_classes, class_count_tensor
from .topk.hinge import class_margins


def ldam_margins(class_counts: Sequence[int], max_m: float = 0.5) -> torch.Tensor:
    """m_c = max_m * (n_min / n_c)^(1/4): proportional to n_c^(-1/4), the largest equal to max_m."""
    if not (isinstance(max_m, (int, float)) and math.isfinite(max_m) and max_m > 0):
        raise ValueError(f"max_m must be a finite number > 0, got max_m={max_m!r}")
    # The same n_c^(-1/4) margins as the imbalanced top-K hinge loss.
    return class_margins(class_count_tensor(class_counts), max_m)


def ldam_loss(logits: torch.Tensor, labels: torch.Tensor, margins: torch.Tensor, scale: float = 30.0) -> torch.Tensor:
    """CE(scale * (logits - m_y on the true class), y) per sample."""
    check_logits_labels(logits, labels)
    check_num_classes(logits, margins, "margins")
    margin = margins.to(logits.device, torch.float32)[labels]
    shifted = logits.float().scatter_add(1, labels[:, None], -margin[:, None])
    return F.cross_entropy(scale * shifted, labels, reduction="none", ignore_index=NO_IGNORED_LABEL)


class LDAM(nn.Module):
    def __init__(self, class_counts: Sequence[int], max_m: float = 0.5, scale: float = 30.0):
        super().__init__()
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got scale={scale!r}")
        self.scale, self.max_m = float(scale), float(max_m)
        self.register_buffer("margins", ldam_margins(class_counts, max_m))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ldam_loss(logits, labels, self.margins, self.scale)

    def extra_repr(self) -> str:
        return f"max_m={self.max_m}, scale={self.scale}"
