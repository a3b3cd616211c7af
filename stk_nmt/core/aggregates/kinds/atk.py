"""AT_k: the mean of the k largest valid losses, by exact selection."""

from __future__ import annotations

import torch

from ...precision import upcast
from ..batched import batched_average_top_k
from ..masked import masked_sorted
from ..modules import AverageTopK
from ..registry import register_aggregate
from .base import AggregateKind


@register_aggregate
class AverageTopKKind(AggregateKind):
    name, label = "atk", "AT_k"
    arguments = ("k", "k_ratio")
    sorts_with_grad = True  # the masked total sums the top of the sorted losses

    def build(self, k=None, k_ratio=None, delta=0.01, smoother="srelu", lam_init=None, clip_k=False):
        return AverageTopK(k=k, k_ratio=k_ratio, clip_k=clip_k)

    def masked_total(self, losses, mask, n, k, lam=None, *, smoother="srelu", delta=0.01, sorted_desc=None):
        ranked = masked_sorted(losses, mask) if sorted_desc is None else sorted_desc
        zero = upcast(losses).new_zeros(())
        keep = torch.arange(ranked.numel(), device=ranked.device) < k
        top_sum = torch.where(keep, ranked, zero).sum()
        return torch.where(k > 0, top_sum * n / torch.clamp(k, min=1), zero)

    def batched(self, losses, k=None, lam=None, delta=None):
        return batched_average_top_k(losses, k)
