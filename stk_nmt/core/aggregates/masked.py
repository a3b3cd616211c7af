"""Masked forms of the aggregates for training loops that must not wait on the device.

The functional forms (functional.py) select the valid losses by boolean indexing, take k as a
Python int and raise on non-finite values: each of those reads a value back from the device (a
host-device synchronisation on a GPU). The forms here keep n and k as tensors, compute over every
position with the padding masked out, never check finiteness (a NaN/inf loss gives a NaN/inf total,
which is what fairseq's loss scaler looks for) and never read anything back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..precision import upcast
from ..selection import select_kth_largest
from .registry import get_aggregate
from .validation import check_k_args


def resolve_k_tensor(n: torch.Tensor, k: Optional[int] = None, k_ratio: Optional[float] = None):
    """(k, clipped) as tensors on n's device, for a 0-dim integer tensor n of valid items.

    k_ratio: k = ceil(k_ratio * n) clipped to [1, n], like resolve_k (rounded to 9 decimals first).
    A count k larger than n is clipped to n (`clipped` is then True): the whole batch is kept.
    For n = 0 the result is k = 0.
    """
    check_k_args(k, k_ratio)
    n = n.reshape(()).long()
    if k is not None:
        k_t = torch.clamp(n, max=int(k))
        return k_t, n < int(k)
    k_t = torch.ceil(torch.round(n.double() * float(k_ratio), decimals=9)).long()
    return torch.minimum(torch.clamp(k_t, min=1), n), torch.zeros((), dtype=torch.bool, device=n.device)


def masked_sorted(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The losses sorted in decreasing order with every masked-out position last (as -inf)."""
    x = upcast(losses).reshape(-1)
    return torch.sort(torch.where(mask.reshape(-1), x, torch.full_like(x, -math.inf)), descending=True).values


def masked_kth_largest(sorted_desc: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The k-th largest valid loss from masked_sorted's output (detached); -inf when k = 0."""
    return select_kth_largest(sorted_desc.detach(), k.reshape(()), presorted=True)


def masked_total(
    name: str,
    losses: torch.Tensor,
    mask: torch.Tensor,
    n: torch.Tensor,
    k: torch.Tensor,
    lam: Optional[torch.Tensor] = None,
    *,
    smoother: str = "srelu",
    delta: float = 0.01,
    sorted_desc: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """n * A for the aggregate `name` over the valid losses, with n and k as tensors (0 when n = 0).

    n * A is what a fairseq criterion returns as its loss: for "average" it is the plain sum of
    the valid losses, bit for bit what label_smoothed_cross_entropy returns. No checks, no
    read-back: see the comment above. `sorted_desc` (masked_sorted's output) saves a sort for atk.
    Each aggregate's own masked form (its class's masked_total, kinds/) computes it.
    """
    return get_aggregate(name).masked_total(losses, mask, n, k, lam, smoother=smoother, delta=delta,
                                            sorted_desc=sorted_desc)


def masked_total_partly_averaged(
    name: str,
    losses: torch.Tensor,
    mask: torch.Tensor,
    averaged: torch.Tensor,
    k: torch.Tensor,
    lam: Optional[torch.Tensor] = None,
    **kwargs,
) -> torch.Tensor:
    """n * A when the valid positions in `averaged` (set E) always enter as in the plain average and
    the other valid ones (set R, n_R of them) go through the aggregate `name`, k counted over R:

        n A = sum_{i in E} l_i + n_R Agg_k(l_R)

    (n = |E| + n_R). For ST_k, n_R Agg_k(l_R) = sum_{i in R} s(l_i - lam) + k lam, so after the
    division by n (fairseq divides by the n target tokens) a token of E has gradient weight 1/n, that
    of the plain average, and a token of R has ST_k's weight s'(l_i - lam)/n; k must be resolved from
    n_R (k = ceil(ratio * n_R)), and lam tracks the k-th largest loss of R. `kwargs` as masked_total.
    """
    mask = mask.reshape(-1)
    averaged = averaged.reshape(-1) & mask
    rest = mask & ~averaged
    x = upcast(losses).reshape(-1)
    always = torch.where(averaged, x, x.new_zeros(())).sum()
    kind = get_aggregate(name) if isinstance(name, str) else name  # a name or a registered aggregate
    return kind.masked_total(losses, rest, rest.sum(), k, lam, **kwargs) + always


@dataclass
class MaskedBatch:
    """One batch's valid items ranked for a masked aggregate (rank_masked): n, k (and whether a count
    k was clipped to n; None when the aggregate takes no count), the losses sorted in decreasing
    order (with their gradient when the aggregate's masked form reads them) and the k-th largest."""

    kind: object
    n: torch.Tensor
    k: torch.Tensor
    clipped: Optional[torch.Tensor]
    ranked_graph: torch.Tensor
    kth: torch.Tensor

    @property
    def ranked(self) -> torch.Tensor:
        return self.ranked_graph.detach()

    def total(self, losses: torch.Tensor, mask: torch.Tensor, lam: Optional[torch.Tensor] = None, *,
              smoother: str = "srelu", delta: float = 0.01, averaged: Optional[torch.Tensor] = None) -> torch.Tensor:
        """n * A over `mask` (the mask rank_masked saw); with `averaged` (valid positions outside mask
        that enter as in the plain average) masked_total_partly_averaged's total over mask | averaged."""
        sorted_desc = self.ranked_graph if self.kind.sorts_with_grad else None
        if averaged is None:
            return self.kind.masked_total(losses, mask, self.n, self.k, lam, smoother=smoother, delta=delta,
                                          sorted_desc=sorted_desc)
        return masked_total_partly_averaged(self.kind, losses, mask | averaged, averaged, self.k, lam,
                                            smoother=smoother, delta=delta, sorted_desc=sorted_desc)


def rank_masked(kind, losses: torch.Tensor, mask: torch.Tensor, k: Optional[int] = None,
                k_ratio: Optional[float] = None) -> MaskedBatch:
    """The masked path's first half, shared by every training-loop adapter (the fairseq criteria, the
    Hugging Face loss): n, the aggregate's k (kind.masked_k), one sort of the losses, the k-th largest.
    The adapter then sets lam (its own lifecycle) and calls .total(). Reads nothing back."""
    n = mask.sum()
    k_t, clipped = kind.masked_k(n, k, k_ratio)
    # One sort of the losses, for the logged k-th largest and, with its gradient, for AT_k's total.
    ranked_graph = masked_sorted(losses if kind.sorts_with_grad else losses.detach(), mask)
    return MaskedBatch(kind, n, k_t, clipped, ranked_graph, masked_kth_largest(ranked_graph, k_t))
