"""The one k-th largest selection against a full sort, on every path it takes."""

import math

import pytest
import torch

from stk_nmt.core.selection import select_blocks, select_kth_largest


def by_sort(x, k):
    return x.sort(-1, descending=True).values[..., k - 1]


@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (1000, 1), (1000, 960), (1000, 1000)])
def test_one_dimensional_losses(n, k):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n + k), dtype=torch.float64)
    assert torch.equal(select_kth_largest(x, k), by_sort(x, k))


@pytest.mark.parametrize("L,k", [(50, 6), (5003, 6), (8192, 1)])  # narrow (topk), wide (blocked), exact blocks
def test_rows_of_scores(L, k):
    g = torch.Generator().manual_seed(L)
    x = torch.randn(5, L, generator=g)
    x[0] = 1.0  # ties
    x[1, :20] = x[1].max() + 1
    assert (select_blocks(L, k) is not None) == (L > 4096)
    assert torch.equal(select_kth_largest(x, k), by_sort(x, k))


def test_one_k_per_row_and_a_presorted_input():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 30, generator=g)
    k = torch.tensor([1, 30, 7, 15])
    expected = torch.stack([by_sort(x[i], int(k[i])) for i in range(4)])
    assert torch.equal(select_kth_largest(x, k), expected)
    ranked = x[0].sort(descending=True).values
    assert torch.equal(select_kth_largest(ranked, torch.tensor(4), presorted=True), ranked[3])
    assert select_kth_largest(ranked, torch.tensor(0), presorted=True).item() == -math.inf
    assert select_kth_largest(ranked[:0], torch.tensor(1), presorted=True).item() == -math.inf
