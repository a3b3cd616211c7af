"""k-th largest selection: the one helper of both axes (the aggregates' lam and k-th largest loss,
the top-K operator's draws and the hinge's top-K accuracy).

select_kth_largest(x, k) is exact: the result is an entry of x, and the algorithm it picks only
changes the speed. The blocked selection below is an internal detail of it, exposed (select_blocks,
kth_along_last) only to the top-K operator, which writes its perturbed scores straight into the
padded layout the blocked selection reads.
"""

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


def select_kth_largest(x: torch.Tensor, k, *, presorted: bool = False) -> torch.Tensor:
    """The k-th largest entry (k counts from 1) along the last axis of x: shape x.shape[:-1].

    k: an int (the same for every row) or an integer tensor of shape x.shape[:-1] (one k per row).
    presorted: x is already sorted in decreasing order along its last axis (masked_sorted's output):
    a gather, no selection, and a k of 0 (or an empty axis) gives -inf; k is then a tensor, so
    nothing is read back from the device.

    How (the same value every way): a tensor k, one sort and a gather; an int k on 1-D x,
    torch.kthvalue (one O(n) pass, for k anywhere in the losses of a batch); on 2-D rows,
    torch.topk, or the blocked selection on wide rows with a small k (about 3x faster at
    L = 10,000).
    """
    if presorted:
        if x.shape[-1] == 0:
            return x.new_full(x.shape[:-1], -math.inf)
        index = torch.clamp(k - 1, min=0).unsqueeze(-1)
        value = x.gather(-1, index).squeeze(-1)
        return torch.where(k > 0, value, torch.full_like(value, -math.inf))
    if isinstance(k, torch.Tensor):
        return select_kth_largest(x.sort(-1, descending=True).values, k.to(x.device), presorted=True)
    if x.dim() == 1:
        return torch.kthvalue(x, x.numel() - k + 1).values
    n_rows, n_cols = x.shape
    blocks = select_blocks(n_cols, k)
    if blocks is None:
        return torch.topk(x, k, dim=1).values[:, k - 1]
    padded = blocks * BLOCK_WIDTH
    if padded == n_cols:
        rows = x.contiguous()
    else:
        rows = x.new_full((n_rows, padded), -math.inf)
        rows[:, :n_cols] = x
    return kth_along_last(rows.view(n_rows, 1, padded), k, blocks)[0][:, 0]
