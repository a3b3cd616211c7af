"""nn.Module forms of the aggregates: the base class and the aggregates without a threshold.

Every aggregate is a module with forward(losses, mask=None) -> scalar, so any individual loss
(token cross-entropy, top-K hinge, LDAM...) combines with any aggregate through one name:
build_aggregate("stk", k_ratio=0.96) (factory.py). MAT_k and ST_k, which hold a trainable
threshold lam, are in lambda_forms.py.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from . import functional
from .validation import check_k_args, resolve_k, select_valid


class Aggregate(nn.Module):
    """Base class: remembers n and k of the last call for logging.

    `k_clipped` counts the calls where a count k larger than the batch was replaced by k = n
    (only with clip_k=True; otherwise such a batch raises ValueError).
    """

    last_n: int = 0
    last_k: int = 0
    k_clipped: int = 0

    def _record(self, n: int, k: int) -> None:
        self.last_n, self.last_k = n, k

    def _resolve_k(self, n: int) -> int:
        """resolve_k, except that with clip_k a count k > n becomes n (and is counted)."""
        if getattr(self, "clip_k", False) and self.k is not None and self.k > n:
            self.k_clipped += 1
            return n
        return resolve_k(n, self.k, self.k_ratio)


class Average(Aggregate):
    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        value = functional.average(losses, mask)
        n = losses.numel() if mask is None else int(mask.sum())
        self._record(n, n)
        return value


class Maximum(Aggregate):
    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        value = functional.maximum(losses, mask)
        self._record(losses.numel() if mask is None else int(mask.sum()), 1)
        return value


class AverageTopK(Aggregate):
    """AT_k by exact selection. clip_k: a batch smaller than a count k uses k = n (AT_n = the average)."""

    def __init__(self, k: Optional[int] = None, k_ratio: Optional[float] = None, clip_k: bool = False):
        super().__init__()
        check_k_args(k, k_ratio)
        self.k, self.k_ratio, self.clip_k = k, k_ratio, clip_k

    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        valid = select_valid(losses, mask)
        k = self._resolve_k(valid.numel())
        self._record(valid.numel(), k)
        return functional.average_top_k(valid, k)

    def extra_repr(self) -> str:
        return f"k={self.k}, k_ratio={self.k_ratio}"
