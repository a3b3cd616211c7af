"""Maximum: the largest valid loss (k = 1)."""

from __future__ import annotations

import math

import torch

from ...precision import upcast
from ..batched import batched_maximum
from ..modules import Maximum
from ..registry import register_aggregate
from .base import AggregateKind


@register_aggregate
class MaximumKind(AggregateKind):
    name, label = "maximum", "Maximum"
    arguments = ()

    def build(self, k=None, k_ratio=None, delta=0.01, smoother="srelu", lam_init=None, clip_k=False):
        return Maximum()

    def masked_k(self, n, k, k_ratio):
        return torch.ones_like(n), None

    def masked_total(self, losses, mask, n, k, lam=None, *, smoother="srelu", delta=0.01, sorted_desc=None):
        x = upcast(losses).reshape(-1)
        top = torch.where(mask.reshape(-1), x, torch.full_like(x, -math.inf)).max()
        return torch.where(n > 0, top * n, x.new_zeros(()))

    def batched(self, losses, k=None, lam=None, delta=None):
        return batched_maximum(losses)
