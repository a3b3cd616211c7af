"""Masked forms of the aggregates for training loops that must not wait on the device.

The functional forms (functional.py) select the valid losses by boolean indexing, take k as a
Python int and raise on non-finite values: each of those reads a value back from the device (a
host-device synchronisation on a GPU). The forms here keep n and k as tensors, compute over every
position with the padding masked out, never check finiteness (a NaN/inf loss gives a NaN/inf total,
which is what fairseq's loss scaler looks for) and never read anything back.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..precision import upcast
from ..selection import select_kth_largest
from .smoothers import get_smoother
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
    """
    x = upcast(losses).reshape(-1)
    mask = mask.reshape(-1)
    zero = x.new_zeros(())
    if name == "average":
        return torch.where(mask, x, zero).sum()
    if name == "maximum":
        top = torch.where(mask, x, torch.full_like(x, -math.inf)).max()
        return torch.where(n > 0, top * n, zero)
    if name == "atk":
        ranked = masked_sorted(losses, mask) if sorted_desc is None else sorted_desc
        keep = torch.arange(ranked.numel(), device=ranked.device) < k
        top_sum = torch.where(keep, ranked, zero).sum()
        return torch.where(k > 0, top_sum * n / torch.clamp(k, min=1), zero)
    if name in ("matk", "stk"):
        if lam is None:
            raise ValueError(f"the {name} aggregate needs lam")
        lam_c = lam.reshape(()).to(x.dtype)
        smooth = get_smoother(smoother, delta)
        # k = 0 only for n = 0: no lam term then (lam may be -inf before its initialisation).
        return torch.where(mask, smooth(x - lam_c), zero).sum() + torch.where(k > 0, k * lam_c, zero)
    raise ValueError(f"aggregate must be one of average, maximum, atk, matk, stk, got aggregate={name!r}")


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
    return masked_total(name, losses, rest, rest.sum(), k, lam, **kwargs) + always
