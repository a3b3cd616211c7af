"""Cross-entropy per sample: (logits (B, C), labels (B,)) -> (B,) fp32."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checks import NO_IGNORED_LABEL, check_logits_labels


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    check_logits_labels(logits, labels)
    return F.cross_entropy(logits.float(), labels, reduction="none", ignore_index=NO_IGNORED_LABEL)


class CrossEntropy(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, labels)
