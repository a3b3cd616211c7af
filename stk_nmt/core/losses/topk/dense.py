"""Dense noise: the perturbed k-th largest over all L classes, pytopk's operator and random stream,
chunked over rows."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from ...precision import compute_dtype
from .chunks import chunk_rows
from ...selection import BLOCK_WIDTH, kth_along_last, select_blocks


def dense_draws(
    scores: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean over draws of the k-th largest of scores + eps Z_b, shape (B,), and its indices, (B, S).

    No argument checks (callers check). Values are in compute_dtype(scores.dtype).
    """
    n_rows, n_cols = scores.shape
    dtype = compute_dtype(scores.dtype)
    device = scores.device
    scores = scores.detach()
    if epsilon == 0:
        # The hard k-th largest: every draw selects the same entry, no noise needed.
        top = torch.topk(scores.to(dtype), k, dim=1)
        index = top.indices[:, k - 1 : k].expand(n_rows, n_samples).contiguous()
        return top.values[:, k - 1].contiguous(), index
    values = torch.empty(n_rows, dtype=dtype, device=device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=device)
    rows = chunk_rows(n_rows, n_cols * n_samples, chunk_elements, device)
    # eps * Z is formed in Z's dtype (fp32 when drawn here), then added to the scores, as in pytopk.
    noise_dtype = torch.float32 if noise is None else noise.dtype
    noise_buf = torch.empty(rows, n_cols, n_samples, dtype=noise_dtype, device=device)
    # The perturbed scores are written draw-major, (rows, S, L): topk along a contiguous axis is
    # faster than along the strided L axis of the (rows, L, S) noise layout.
    blocks = select_blocks(n_cols, k)
    padded = n_cols if blocks is None else blocks * BLOCK_WIDTH
    perturbed_buf = torch.empty(rows, n_samples, padded, dtype=dtype, device=device)
    perturbed_buf[:, :, n_cols:] = -math.inf  # padding of the blocked selection: never selected
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        z = noise_buf[: hi - lo]
        if noise is None:
            torch.randn(z.shape, generator=generator, out=z)
            if epsilon != 1.0:  # 1 * z == z exactly: skip a pass
                z.mul_(epsilon)
        else:
            torch.mul(noise[lo:hi], epsilon, out=z)
        perturbed = perturbed_buf[: hi - lo]
        # (eps Z) + s equals pytopk's s + (eps Z) bit for bit: IEEE addition commutes.
        torch.add(z.transpose(1, 2), scores[lo:hi, None, :], out=perturbed[:, :, :n_cols])
        kth, index = kth_along_last(perturbed, k, blocks)
        values[lo:hi] = kth.mean(dim=-1)
        indices[lo:hi] = index
    return values, indices
