"""Truncated noise: only the classes within truncation_margin of each row's k-th largest score are
perturbed, with the given noise; the dense result except with probability at most `tolerance`."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Optional, Tuple

import torch

from .chunks import chunk_rows

# Default bound on the probability, per row and call, that truncation changes the row's result.
DEFAULT_TOLERANCE = 1e-6


def truncation_margin(n_classes: int, k: int, n_samples: int, epsilon: float, tolerance: float) -> float:
    """The candidate margin m: classes scoring below (k-th largest score) - m are not perturbed.

    A class j outside the candidate set can change draw b only if s_j + eps Z_jb beats s_c + eps Z_cb
    for one of the k top classes c, whose score is more than m above s_j. eps (Z_jb - Z_cb) is
    N(0, 2 eps^2), so by a union bound over the (L - k) outside classes, the k top classes and the
    S draws, the row's result changes with probability at most

        S * k * (L - k) * Q(m / (eps sqrt 2))        Q = upper tail of N(0, 1),

    and m is chosen so that this equals `tolerance` (0 when no class can lie outside).
    """
    pairs = n_samples * k * (n_classes - k)
    if pairs <= 0 or epsilon == 0:
        return 0.0
    z = -NormalDist().inv_cdf(tolerance / pairs)  # Q^{-1}; accurate far into the tail
    return max(0.0, epsilon * math.sqrt(2.0) * z)


def truncated_draws(
    cand_values: torch.Tensor,
    cand_index: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """dense_draws restricted to each row's candidate classes.

    cand_values, cand_index: (R, C) candidate scores (compute dtype, -inf for padding) and classes,
    from gather_candidates. The noise is drawn for the candidates only, torch.randn(R, C, S) (fp32)
    per chunk, or gathered from a given (R, L, S) noise: then draw b perturbs every candidate
    exactly as the dense operator does, and the result is the dense one whenever no other class
    enters the top k of a draw (probability bounded by truncation_margin).
    Returns the mean k-th largest (R,) and the selected class indices (R, S), in [0, L).
    """
    n_rows, n_candidates = cand_values.shape
    values = torch.empty(n_rows, dtype=cand_values.dtype, device=cand_values.device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=cand_values.device)
    rows = chunk_rows(n_rows, n_candidates * n_samples, chunk_elements, cand_values.device)
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        if noise is None:
            z = torch.randn(hi - lo, n_candidates, n_samples, generator=generator, device=cand_values.device)
        else:
            z = noise[lo:hi].gather(1, cand_index[lo:hi, :, None].expand(-1, -1, n_samples))
        if epsilon != 1.0:  # z is a fresh tensor either way; 1 * z == z exactly
            z.mul_(epsilon)
        # Same operations, in the same dtypes, as the dense path: (eps Z) + s, then topk per draw.
        perturbed = torch.add(z.transpose(1, 2), cand_values[lo:hi, None, :])
        top = torch.topk(perturbed, k, dim=2)
        values[lo:hi] = top.values[:, :, k - 1].mean(dim=-1)
        indices[lo:hi] = cand_index[lo:hi].gather(1, top.indices[:, :, k - 1])
    return values, indices
