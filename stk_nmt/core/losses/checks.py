"""Argument checks of the classification losses: (B, C) logits, (B,) labels, per-class tables."""

from __future__ import annotations

from typing import Sequence

import torch


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
    """Training items per class as a float64 tensor; every count must be a positive integer."""
    if class_counts is None:
        raise ValueError(f"{name} is required: the training images per class")
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() < 2 or not bool(torch.isfinite(counts).all()) or bool((counts < 1).any()):
        raise ValueError(f"{name} must list >= 2 positive counts (one per class), got {name}={list(class_counts)!r}")
    return counts


def check_num_classes(logits: torch.Tensor, table: torch.Tensor, name: str) -> None:
    if logits.shape[1] != table.numel():
        raise ValueError(f"logits have {logits.shape[1]} classes but {name} has {table.numel()} entries")
