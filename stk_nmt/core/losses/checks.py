"""Argument checks of the classification losses: (B, C) logits, (B,) labels, per-class tables.

One label check for every loss of the core (check_labels), with one sync policy: the labels' type
and shape are always checked; their range is read back on the CPU only. On an accelerator that
read-back would make the host wait for the device on every training step (a GPU training step
must not synchronise), and an out-of-range label trips the device's own index check in the
gather / indexing / cross_entropy that uses it, as in torch's own losses.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..sync_policy import checks_values

LABEL_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
# F.cross_entropy's ignore_index for the core's losses: none. torch's default (-100) would give a
# label -100 a zero loss off the CPU, where no range check reads the labels; with this value no
# label is skipped and -100 trips the device's index check like any other label outside [0, C).
NO_IGNORED_LABEL = torch.iinfo(torch.int64).min


def check_labels(labels: torch.Tensor, n_rows: int, n_classes: int, rows: Optional[torch.Tensor] = None,
                 n_all_rows: int = 0) -> None:
    """labels (n_rows,) integer class indices in [0, n_classes); rows, if given, (n_rows,) row indices
    in [0, n_all_rows) (the rows of a larger batch the labels belong to). The ranges are read back
    on the CPU only, in one pass each (see the module's docstring)."""
    if not isinstance(labels, torch.Tensor) or labels.dtype not in LABEL_DTYPES:
        raise ValueError(f"labels must be an integer torch.Tensor of class indices, got {labels!r:.80}")
    if tuple(labels.shape) != (n_rows,):
        raise ValueError(f"labels must have shape (B,) = ({n_rows},), got labels.shape={tuple(labels.shape)}")
    if not checks_values(labels) or n_rows == 0:
        return
    bounds = [*torch.aminmax(labels), *(torch.aminmax(rows) if rows is not None else ())]
    lo, hi, *row_bounds = torch.stack([b.long() for b in bounds]).tolist()  # the one read-back
    if lo < 0 or hi >= n_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"labels must lie in [0, C) = [0, {n_classes}), got a label {bad}")
    if row_bounds and (row_bounds[0] < 0 or row_bounds[1] >= n_all_rows):
        bad = row_bounds[0] if row_bounds[0] < 0 else row_bounds[1]
        raise ValueError(f"rows must lie in [0, B) = [0, {n_all_rows}), got a row {bad}")


def check_logits_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point (batch, classes) tensor, got {getattr(logits, 'shape', type(logits))}")
    check_labels(labels, logits.shape[0], logits.shape[1])


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
