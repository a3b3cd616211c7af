"""The k-th largest entry of each row of a wide score matrix, and its position: torch.topk on
narrow rows, a blocked selection on wide ones (the same value and class, faster at L = 10,000)."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

# Blocked selection: the classes are cut into BLOCK_WIDTH strided groups of `blocks` classes
# (class j is in block j % blocks); the k largest entries lie in the k blocks with the largest
# maxima (each of them is at most its block's maximum, and at most k blocks have a maximum at least
# the k-th largest), so a vectorised max over the groups, a top-k over the block maxima and one over
# the k * BLOCK_WIDTH gathered entries give torch.topk's k-th value and class, about 3x faster at
# L = 10,000. Small rows use torch.topk directly (the extra steps cost more than they save there).
BLOCK_WIDTH = 8
BLOCK_MIN_CLASSES = 4096


def select_blocks(n_cols: int, k: int) -> Optional[int]:
    """Blocks per row for the blocked selection, or None to use torch.topk."""
    if n_cols < BLOCK_MIN_CLASSES or 4 * k * BLOCK_WIDTH > n_cols:
        return None
    return -(-n_cols // BLOCK_WIDTH)


def kth_along_last(perturbed: torch.Tensor, k: int, blocks: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """k-th largest entry along the last axis and its position: (rows, S) each.

    With blocks, perturbed's last axis is blocks * BLOCK_WIDTH long, padded with -inf.
    """
    if blocks is None:
        top = torch.topk(perturbed, k, dim=2)  # (rows, S, k), sorted descending
        return top.values[:, :, k - 1], top.indices[:, :, k - 1]
    n_rows, n_samples = perturbed.shape[:2]
    block_max = perturbed.view(n_rows, n_samples, BLOCK_WIDTH, blocks).amax(dim=2)  # contiguous: vectorised
    best = torch.topk(block_max, k, dim=2).indices  # (rows, S, k)
    offsets = torch.arange(0, BLOCK_WIDTH * blocks, blocks, device=perturbed.device)
    index = (best[:, :, :, None] + offsets).view(n_rows, n_samples, k * BLOCK_WIDTH)
    top = torch.topk(perturbed.gather(2, index), k, dim=2)
    return top.values[:, :, k - 1], index.gather(2, top.indices[:, :, k - 1 : k]).squeeze(2)


def kth_largest_values(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 1): the k-th largest entry of each row of scores (B, L), by the blocked selection on wide
    rows (as the draws are), torch.topk otherwise; the same value either way."""
    n_rows, n_cols = scores.shape
    blocks = select_blocks(n_cols, k)
    if blocks is None:
        return torch.topk(scores, k, dim=1).values[:, k - 1 : k]
    padded = blocks * BLOCK_WIDTH
    if padded == n_cols:
        rows = scores.contiguous()
    else:
        rows = scores.new_full((n_rows, padded), -math.inf)
        rows[:, :n_cols] = scores
    return kth_along_last(rows.view(n_rows, 1, padded), k, blocks)[0]
