"""Logit-adjusted cross-entropy (Menon et al. 2021) per sample: CE(logits + tau * log prior, y).

With tau = 1 it is the balanced softmax of Ren et al. 2020.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import NO_IGNORED_LABEL, check_logits_labels, check_num_classes, class_count_tensor


def logit_adjusted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """CE(logits + tau * log_prior, y) per sample; log_prior = log(n_c / n)."""
    check_logits_labels(logits, labels)
    check_num_classes(logits, log_prior, "log_prior")
    return F.cross_entropy(logits.float() + tau * log_prior.to(logits.device, torch.float32), labels, reduction="none",
                           ignore_index=NO_IGNORED_LABEL)


class LogitAdjusted(nn.Module):
    """Logit-adjusted cross-entropy; tau = 1 is the balanced softmax."""

    def __init__(self, class_counts: Sequence[int], tau: float = 1.0):
        super().__init__()
        if not (isinstance(tau, (int, float)) and math.isfinite(tau)):
            raise ValueError(f"tau must be a finite number, got tau={tau!r}")
        counts = class_count_tensor(class_counts)
        self.tau = float(tau)
        self.register_buffer("log_prior", (counts / counts.sum()).log().float())

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return logit_adjusted_cross_entropy(logits, labels, self.log_prior, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
