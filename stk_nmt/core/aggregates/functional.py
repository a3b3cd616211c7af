"""Aggregates of individual losses: average, maximum, AT_k, MAT_k and ST_k (functional forms).

Each takes a tensor of losses (any shape; every element is an item) and an optional bool mask of
the same shape (True = the item counts, e.g. a non-padding token), and returns a scalar in at
least fp32. k is a count or a ratio of the valid items n (k = ceil(ratio * n) clipped to [1, n]).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..precision import compute_dtype, upcast
from ..selection import select_kth_largest
from ..sync_policy import checks_values
from .fused_stk import fused_st_k
from .smoothers import get_smoother
from .validation import check_delta, raise_if_nonfinite, resolve_k, select_valid


def average(losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    valid = select_valid(losses, mask)
    value = upcast(valid).mean()
    raise_if_nonfinite(valid, value)
    return value


def maximum(losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    valid = select_valid(losses, mask)
    value = upcast(valid).max()
    raise_if_nonfinite(valid, value)
    return value


def average_top_k(
    losses: torch.Tensor,
    k: Optional[int] = None,
    *,
    k_ratio: Optional[float] = None,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """AT_k: the mean of the k largest valid losses, by exact selection (torch.topk)."""
    valid = select_valid(losses, mask)
    k = resolve_k(valid.numel(), k, k_ratio)
    value = upcast(torch.topk(valid, k, sorted=False).values).mean()
    raise_if_nonfinite(valid, value)
    return value


def kth_largest(
    losses: torch.Tensor, k: Optional[int] = None, *, k_ratio: Optional[float] = None, mask=None
) -> torch.Tensor:
    """The k-th largest valid loss (detached): where lam sits at the optimum of ST_k / MAT_k."""
    valid = select_valid(losses, mask).detach()
    k = resolve_k(valid.numel(), k, k_ratio)
    return select_kth_largest(upcast(valid), k)


def lambda_form(
    losses: torch.Tensor,
    lam: torch.Tensor,
    k: Optional[int] = None,
    *,
    k_ratio: Optional[float] = None,
    mask: Optional[torch.Tensor] = None,
    smoother: str = "srelu",
    delta: float = 0.01,
    fused: bool = True,
) -> torch.Tensor:
    """(1/n) sum_i smoother(l_i - lam) + (k/n) lam over the valid items.

    smoother="srelu" is ST_k (the fused one-pass kernel unless fused=False); "relu" is MAT_k;
    "elu", "softplus", "leaky_relu" are the variants of the paper's Table 2.
    """
    if not isinstance(lam, torch.Tensor) or lam.numel() != 1:
        raise ValueError(f"lam must be a one-element tensor (e.g. nn.Parameter(torch.zeros(()))), got {lam!r}")
    if smoother == "srelu":
        check_delta(delta)
    smooth = get_smoother(smoother, delta)
    valid = select_valid(losses, mask)
    n = valid.numel()
    k = resolve_k(n, k, k_ratio)
    lam = lam.reshape(())
    if checks_values(lam) and not bool(torch.isfinite(lam.detach())):  # CPU only: sync_policy.py
        raise ValueError(f"lam must be finite, got lam={float(lam.detach())}")
    if smoother == "srelu" and fused:
        value = fused_st_k(valid, lam, k, float(delta))
    else:
        lam_c = lam.to(compute_dtype(valid.dtype))
        value = smooth(upcast(valid) - lam_c).mean() + (k / n) * lam_c
    raise_if_nonfinite(valid, value)
    return value


def st_k(losses, lam, k=None, *, k_ratio=None, mask=None, delta=0.01, fused=True):
    """ST_k (paper Eq. 6): (1/n) sum SReLU_delta(l_i - lam) + (k/n) lam."""
    return lambda_form(losses, lam, k, k_ratio=k_ratio, mask=mask, smoother="srelu", delta=delta, fused=fused)


def mat_k(losses, lam, k=None, *, k_ratio=None, mask=None):
    """MAT_k: (1/n) sum [l_i - lam]_+ + (k/n) lam; at its optimum over lam it equals (k/n) AT_k."""
    return lambda_form(losses, lam, k, k_ratio=k_ratio, mask=mask, smoother="relu")
