"""A toy aggregate in one file: the mean of the top half of the losses (AT_k with k = ceil(n / 2)).

The acceptance test of the registry (tests/test_new_aggregate.py): importing this file registers
"top_half", and from then on every door takes it by name (--stk-aggregate top_half, the vision
CLI's --aggregate top_half, BatchedAggregate("top_half", G)) without any other file knowing it.
Written with torch alone, apart from the base class and the registry, so that nothing of the
built-in aggregates' code is reused.
"""

import math

import torch

from stk_nmt.core import Aggregate, AggregateKind, register_aggregate, select_valid

NAME = "top_half"


def top_count(n):
    """ceil(n / 2) for an int or an integer tensor."""
    return (n + 1) // 2


class TopHalf(Aggregate):
    """The plain form: the mean of the ceil(n / 2) largest valid losses."""

    def forward(self, losses, mask=None):
        valid = select_valid(losses, mask)
        k = top_count(valid.numel())
        self._record(valid.numel(), k)
        return torch.sort(valid.float(), descending=True).values[:k].mean()


@register_aggregate
class TopHalfKind(AggregateKind):
    name, label = NAME, "TopHalf"
    arguments = ()  # no k, delta or lam: the adapters warn about any such flag given

    def build(self, **settings):
        return TopHalf()

    def masked_k(self, n, k, k_ratio):
        return top_count(n), None

    def masked_total(self, losses, mask, n, k, lam=None, *, smoother="srelu", delta=0.01, sorted_desc=None):
        x = losses.float().reshape(-1)
        ranked = torch.sort(torch.where(mask.reshape(-1), x, -math.inf), descending=True).values
        top = torch.where(torch.arange(ranked.numel(), device=x.device) < k, ranked, 0.0).sum()
        return torch.where(k > 0, top * n / torch.clamp(k, min=1), 0.0)

    def batched(self, losses, k=None, lam=None, delta=None):
        rows = torch.sort(losses.float(), dim=1, descending=True).values
        return rows[:, : top_count(losses.shape[1])].mean(1)
