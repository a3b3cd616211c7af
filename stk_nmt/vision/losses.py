"""Per-sample classification losses for long-tail training: (logits (B, C), labels (B,)) -> (B,).

Each is an nn.Module with a functional twin and returns one fp32 loss per sample, so any core
aggregate (average, AT_k, ST_k...) can combine them (see criterion.py).

- cross-entropy.
- logit-adjusted cross-entropy (Menon et al. 2021): CE(logits + tau * log prior, y); with tau = 1
  this is the balanced softmax of Ren et al. 2020.
- LDAM (Cao et al. 2019): CE(scale * (logits - m_y e_y), y), margins m_c proportional to
  n_c^(-1/4), the largest equal to max_m. Meant for a normalised (cosine) last layer.
- the smoothed top-K hinge losses of Garcin et al. 2022, balanced and imbalanced (from the core).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stk_nmt.core import BalancedTopKHinge, ImbalancedTopKHinge, class_margins

LOSSES = ("ce", "logit-adjusted", "balanced-softmax", "ldam", "topk-hinge", "topk-hinge-imbalanced")
# Losses whose margins assume a cosine (normalised) last layer.
COSINE_LOSSES = ("ldam", "topk-hinge-imbalanced")


def check_logits_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point (batch, classes) tensor, got {getattr(logits, 'shape', type(logits))}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must be a 1-D tensor of {logits.shape[0]} class indices, got {getattr(labels, 'shape', type(labels))}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype={labels.dtype}")
    num_classes = logits.shape[1]
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        raise ValueError(f"labels out of range [0, {num_classes}): got label={int(labels[bad][0])} ({int(bad.sum())} bad)")


def class_count_tensor(class_counts: Sequence[int], name: str = "class_counts") -> torch.Tensor:
    """Training images per class as a float64 tensor; every count must be a positive integer."""
    if class_counts is None:
        raise ValueError(f"{name} is required: the training images per class")
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() < 2 or not bool(torch.isfinite(counts).all()) or bool((counts < 1).any()):
        raise ValueError(f"{name} must list >= 2 positive counts (one per class), got {name}={list(class_counts)!r}")
    return counts


def _check_num_classes(logits: torch.Tensor, table: torch.Tensor, name: str) -> None:
    if logits.shape[1] != table.numel():
        raise ValueError(f"logits have {logits.shape[1]} classes but {name} has {table.numel()} entries")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    check_logits_labels(logits, labels)
    return F.cross_entropy(logits.float(), labels, reduction="none")


def logit_adjusted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """CE(logits + tau * log_prior, y) per sample; log_prior = log(n_c / n)."""
    check_logits_labels(logits, labels)
    _check_num_classes(logits, log_prior, "log_prior")
    return F.cross_entropy(logits.float() + tau * log_prior.to(logits.device, torch.float32), labels, reduction="none")


def ldam_margins(class_counts: Sequence[int], max_m: float = 0.5) -> torch.Tensor:
    """m_c = max_m * (n_min / n_c)^(1/4): proportional to n_c^(-1/4), the largest equal to max_m."""
    if not (isinstance(max_m, (int, float)) and math.isfinite(max_m) and max_m > 0):
        raise ValueError(f"max_m must be a finite number > 0, got max_m={max_m!r}")
    # The same n_c^(-1/4) margins as the imbalanced top-K hinge loss of the core.
    return class_margins(class_count_tensor(class_counts), max_m)


def ldam_loss(logits: torch.Tensor, labels: torch.Tensor, margins: torch.Tensor, scale: float = 30.0) -> torch.Tensor:
    """CE(scale * (logits - m_y on the true class), y) per sample."""
    check_logits_labels(logits, labels)
    _check_num_classes(logits, margins, "margins")
    margin = margins.to(logits.device, torch.float32)[labels]
    shifted = logits.float().scatter_add(1, labels[:, None], -margin[:, None])
    return F.cross_entropy(scale * shifted, labels, reduction="none")


class CrossEntropy(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, labels)


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
    """The per-sample loss called `name` (one of LOSSES); class_counts = training images per class.

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
