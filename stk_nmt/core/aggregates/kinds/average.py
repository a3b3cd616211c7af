"""Average: the plain mean of the valid losses (k = n; the masked total is their plain sum)."""

from __future__ import annotations

import torch

from ...precision import upcast
from ..batched import batched_average
from ..modules import Average
from ..registry import register_aggregate
from .base import AggregateKind


@register_aggregate
class AverageKind(AggregateKind):
    name, label = "average", "Average"
    arguments = ()

    def build(self, k=None, k_ratio=None, delta=0.01, smoother="srelu", lam_init=None, clip_k=False):
        return Average()

    def masked_k(self, n, k, k_ratio):
        return n, None

    def masked_total(self, losses, mask, n, k, lam=None, *, smoother="srelu", delta=0.01, sorted_desc=None):
        # Bit for bit the sum label_smoothed_cross_entropy returns.
        x = upcast(losses).reshape(-1)
        return torch.where(mask.reshape(-1), x, x.new_zeros(())).sum()

    def batched(self, losses, k=None, lam=None, delta=None):
        return batched_average(losses)
