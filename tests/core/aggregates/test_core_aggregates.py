"""Aggregates against brute-force sorting, the fused ST_k against the unfused formula, masks."""

import pytest
import torch

import stk_nmt.core.aggregates.fused_stk as fused_stk
from stk_nmt.core import average, average_top_k, kth_largest, mat_k, maximum, resolve_k, srelu, st_k


def brute_top_k_mean(values, k):
    return sum(sorted(values, reverse=True)[:k]) / k


@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (100, 1), (100, 100), (1000, 37)])
def test_average_top_k_matches_brute_force_sort(n, k):
    g = torch.Generator().manual_seed(n + k)
    losses = torch.rand(n, generator=g, dtype=torch.float64) * 5
    assert average_top_k(losses, k).item() == pytest.approx(brute_top_k_mean(losses.tolist(), k), rel=1e-12)


def test_k_ratio_is_recomputed_per_batch():
    assert resolve_k(100, k_ratio=0.96) == 96
    assert resolve_k(100, k_ratio=0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floating point
    assert resolve_k(100, k_ratio=0.14) == 14
    assert resolve_k(10, k_ratio=0.01) == 1  # ceil(0.1) = 1
    assert resolve_k(7, k_ratio=0.5) == 4
    assert resolve_k(7, k_ratio=1.0) == 7
    losses = torch.arange(10, dtype=torch.float64)
    assert average_top_k(losses, k_ratio=0.3).item() == pytest.approx((9 + 8 + 7) / 3)


def test_average_and_maximum():
    losses = torch.tensor([0.5, 3.0, 1.0, 2.5], dtype=torch.float64)
    assert average(losses).item() == pytest.approx(7.0 / 4)
    assert maximum(losses).item() == 3.0


def unfused_st_k(losses, lam, k, delta):
    return srelu(losses - lam, delta).mean() + k / losses.numel() * lam


@pytest.mark.parametrize("n,k,delta", [(50, 5, 0.01), (301, 150, 0.5), (1, 1, 0.01)])
def test_fused_st_k_gradcheck_float64(n, k, delta):
    g = torch.Generator().manual_seed(n)
    losses = (torch.rand(n, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda l, m: st_k(l, m, k, delta=delta), (losses, lam))
    fused = st_k(losses, lam, k, delta=delta)
    plain = unfused_st_k(losses, lam, k, delta)
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-14)
    g_fused = torch.autograd.grad(fused, (losses, lam))
    g_plain = torch.autograd.grad(plain, (losses, lam))
    for a, b in zip(g_fused, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_fused_chunked_path_equals_unfused(monkeypatch):
    monkeypatch.setattr(fused_stk, "CHUNK", 64)  # force many chunks, including a ragged last one
    losses = (torch.randn(1000, dtype=torch.float64) * 3).requires_grad_(True)
    lam = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    fused = st_k(losses, lam, 100)
    (fused * 2.5).backward()  # a non-unit upstream gradient takes the in-place scaling path
    expect = unfused_st_k(losses.detach(), lam.detach(), 100, 0.01)
    torch.testing.assert_close(fused.detach(), expect, rtol=1e-12, atol=1e-14)
    l2 = losses.detach().clone().requires_grad_(True)
    m2 = lam.detach().clone().requires_grad_(True)
    (unfused_st_k(l2, m2, 100, 0.01) * 2.5).backward()
    torch.testing.assert_close(losses.grad, l2.grad, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(lam.grad, m2.grad, rtol=1e-12, atol=1e-15)


def test_second_backward_through_retained_graph_is_correct():
    losses = torch.rand(500, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    value = st_k(losses, lam, 50)
    for _ in range(3):
        value.backward(retain_graph=True)
    l2 = losses.detach().clone().requires_grad_(True)
    unfused_st_k(l2, lam.detach(), 50, 0.01).backward()
    torch.testing.assert_close(losses.grad, 3 * l2.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_losses_are_aggregated_in_fp32(dtype):
    losses = (torch.rand(4000) * 6).to(dtype).requires_grad_(True)
    lam = torch.tensor(4.0, requires_grad=True)
    value = st_k(losses, lam, 400)
    assert value.dtype == torch.float32
    expect = unfused_st_k(losses.detach().double(), lam.detach().double(), 400, 0.01)
    assert value.item() == pytest.approx(expect.item(), rel=1e-5)
    value.backward()
    assert losses.grad.dtype == dtype and lam.grad.dtype == torch.float32


def minimise_over_lam(fn, lo, hi, iters=200):
    """Golden-section search on a convex function of one variable (independent of our gradients)."""
    phi = (5**0.5 - 1) / 2
    a, b = lo, hi
    for _ in range(iters):
        c, d = b - phi * (b - a), a + phi * (b - a)
        if fn(c) < fn(d):
            b = d
        else:
            a = c
    return (a + b) / 2


@pytest.mark.parametrize("n,k", [(200, 20), (1000, 960), (50, 1)])
def test_st_k_minimised_over_lam_tracks_kth_largest_and_mat_k(n, k):
    delta = 0.01
    g = torch.Generator().manual_seed(k)
    losses = torch.rand(n, generator=g, dtype=torch.float64) * 3
    ordered = sorted(losses.tolist(), reverse=True)

    def value_at(m, fn):
        return fn(losses, torch.tensor(m, dtype=torch.float64), k).item()

    lam_star = minimise_over_lam(lambda m: value_at(m, st_k), -1.0, 4.0)
    kth, k_plus_1th = ordered[k - 1], ordered[k] if k < n else ordered[k - 1] - 1.0
    assert k_plus_1th - delta <= lam_star <= kth + delta
    st_min = value_at(lam_star, st_k)
    mat_min = value_at(minimise_over_lam(lambda m: value_at(m, mat_k), -1.0, 4.0), mat_k)
    assert 0 <= mat_min - st_min < delta / 2
    # MAT_k at its optimum (lam = k-th largest loss) equals (k/n) * AT_k, by brute force.
    assert value_at(kth, mat_k) == pytest.approx(k / n * brute_top_k_mean(ordered, k), rel=1e-12)
    assert mat_min == pytest.approx(k / n * brute_top_k_mean(ordered, k), rel=1e-9)


def test_kth_largest():
    losses = torch.tensor([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    assert kth_largest(losses, 2).item() == 4.0
    assert kth_largest(losses, k_ratio=0.5).item() == 3.0


@pytest.mark.parametrize("name", ["average", "maximum", "atk", "matk", "stk"])
def test_masks_ignore_padded_items_exactly(name):
    g = torch.Generator().manual_seed(3)
    valid = torch.rand(40, generator=g, dtype=torch.float64)
    padded = torch.cat([valid[:25], torch.full((7,), 1e6, dtype=torch.float64), valid[25:]])
    mask = torch.ones_like(padded, dtype=torch.bool)
    mask[25:32] = False
    padded.requires_grad_(True)
    lam = torch.tensor(0.6, dtype=torch.float64)
    fns = {
        "average": lambda x, m=None: average(x, m),
        "maximum": lambda x, m=None: maximum(x, m),
        "atk": lambda x, m=None: average_top_k(x, 10, mask=m),
        "matk": lambda x, m=None: mat_k(x, lam, 10, mask=m),
        "stk": lambda x, m=None: st_k(x, lam, 10, mask=m),
    }
    value = fns[name](padded, mask)
    value.backward()
    assert value.item() == fns[name](valid).item()
    assert padded.grad[25:32].abs().max().item() == 0.0


def test_mask_with_ratio_counts_only_valid_items():
    losses = torch.tensor([[5.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    # n = 3 valid items, k = ceil(0.5 * 3) = 2 -> mean of {5, 3}
    assert average_top_k(losses, k_ratio=0.5, mask=mask).item() == 4.0
