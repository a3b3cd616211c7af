"""The fused ST_k where it is easy to get wrong: half-precision losses, higher-order gradients, and
losses far from lam. References are the formulas of docs/method.md written out here in float64,
the unfused autograd path (fused=False) and finite differences."""

import pytest
import torch
import torch.nn.functional as F

import stk_nmt.core.aggregates.fused_stk as fused_stk
from stk_nmt.core import st_k


def reference_st_k(losses, lam, k, delta):
    """ST_k, d/dl_i and d/dlam in float64, from lam's own value (no rounding to the losses' dtype)."""
    x = losses.detach().double() - lam.detach().double()
    n = x.numel()
    r = torch.sqrt(x * x + delta * delta)
    value = (0.5 * (x + r - delta)).mean() + k / n * lam.detach().double()
    grad_losses = 0.5 * (1 + x / r) / n
    return value, grad_losses, k / n - grad_losses.sum()


@pytest.mark.parametrize("chunk", [4, fused_stk.CHUNK])  # several chunks, a ragged last one / one chunk
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_losses_next_to_a_lam_that_half_precision_cannot_hold(monkeypatch, dtype, chunk):
    monkeypatch.setattr(fused_stk, "CHUNK", chunk)
    # Losses around 10 (fp16 steps by 2^-7 there, bf16 by 2^-4); lam = 10.003 rounds to 10.0 in both,
    # which would put x = 0 instead of -0.003, within delta of the kink.
    losses = (10.0 + torch.arange(-6, 7, dtype=torch.float64) / 128).to(dtype).requires_grad_(True)
    lam = torch.tensor(10.003, requires_grad=True)
    value = st_k(losses, lam, 4, delta=0.01)
    value.backward()
    ref_value, ref_grad, ref_lam_grad = reference_st_k(losses, lam, 4, 0.01)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(ref_value.item(), rel=1e-6)
    torch.testing.assert_close(losses.grad, ref_grad.to(dtype))  # equal up to rounding to dtype
    assert lam.grad.item() == pytest.approx(ref_lam_grad.item(), abs=1e-6)


@pytest.mark.parametrize("delta", [0.01, 0.5])
def test_fused_st_k_gradgradcheck_float64(delta):
    g = torch.Generator().manual_seed(7)
    losses = (torch.rand(40, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    lam = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda l, m: st_k(l, m, 10, delta=delta), (losses, lam))


def test_hessian_vector_product_through_a_logistic_model():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(64, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (64,), generator=g).double() * 2 - 1
    w = torch.randn(5, generator=g, dtype=torch.float64) * 0.5
    direction = torch.randn(6, generator=g, dtype=torch.float64)
    k, delta = 16, 0.1

    def objective(params, fused):
        # params = (w, lam): per-example logistic losses, aggregated by ST_k with that lam.
        losses = F.softplus(-labels * (features @ params[:5]))
        return st_k(losses, params[5], k, delta=delta, fused=fused)

    def gradient(params, fused, create_graph=False):
        params = params if create_graph else params.detach().requires_grad_(True)
        return torch.autograd.grad(objective(params, fused), params, create_graph=create_graph)[0]

    def hvp(params, fused):
        params = params.detach().requires_grad_(True)
        return torch.autograd.grad(gradient(params, fused, create_graph=True) @ direction, params)[0]

    # lam near the k-th largest loss, so that many losses sit where SReLU bends.
    lam = torch.kthvalue(F.softplus(-labels * (features @ w)), 64 - k + 1).values
    params = torch.cat([w, lam.reshape(1)])
    fused, unfused = hvp(params, True), hvp(params, False)
    eps = 1e-5
    finite_diff = (gradient(params + eps * direction, True) - gradient(params - eps * direction, True)) / (2 * eps)
    torch.testing.assert_close(fused, unfused, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused, finite_diff, rtol=1e-6, atol=1e-8)
    assert fused.norm() > 0.1  # the SReLU curvature is part of it


@pytest.mark.parametrize("chunk", [2, fused_stk.CHUNK])
@pytest.mark.parametrize("dtype,huge", [(torch.float32, 1e20), (torch.bfloat16, 1e20), (torch.float64, 1e160)])
@pytest.mark.parametrize("case", ["losses_far_above_lam", "lam_far_above_losses", "lam_far_below_losses"])
def test_losses_far_from_lam_agree_with_the_unfused_path(monkeypatch, dtype, huge, case, chunk):
    monkeypatch.setattr(fused_stk, "CHUNK", chunk)
    # (l - lam)^2 overflows past sqrt(finfo.max): ~1.8e19 in fp32, ~1.3e154 in fp64.
    lam_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    losses, lam = {
        "losses_far_above_lam": ([huge, 3 * huge, 1.0, 2.0, 0.25], 0.5),
        "lam_far_above_losses": ([1.0, 2.0, 0.25, 3.0, 0.5], huge),
        "lam_far_below_losses": ([1.0, 2.0, 0.25, 3.0, 0.5], -huge),
    }[case]
    grads, values = [], []
    for fused in (True, False):
        l = torch.tensor(losses, dtype=dtype, requires_grad=True)
        m = torch.tensor(lam, dtype=lam_dtype, requires_grad=True)
        value = st_k(l, m, 2, delta=0.01, fused=fused)
        value.backward()
        values.append(value.detach())
        grads.append((l.grad, m.grad))
    torch.testing.assert_close(values[0], values[1], rtol=1e-6, atol=0.0)
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
    if dtype != torch.float64:  # squares of 1e20 fit in float64: check against the written-out formula too
        ref_value, ref_grad, ref_lam_grad = reference_st_k(
            torch.tensor(losses, dtype=dtype), torch.tensor(lam, dtype=lam_dtype), 2, 0.01)
        assert values[0].item() == pytest.approx(ref_value.item(), rel=1e-6)
        torch.testing.assert_close(grads[0][0].double(), ref_grad, rtol=1e-2, atol=1e-6)
        assert grads[0][1].item() == pytest.approx(ref_lam_grad.item(), abs=1e-6)


@pytest.mark.parametrize("chunk", [64, fused_stk.CHUNK])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_capped_pass_is_exact_on_ordinary_losses(monkeypatch, dtype, chunk):
    # The pass always caps x^2 + d^2 (checking for overflow would read a result back to the host);
    # on ordinary losses the cap must change nothing: compare with the float64 formula.
    monkeypatch.setattr(fused_stk, "CHUNK", chunk)
    losses = (torch.randn(1000, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3).to(dtype)
    losses.requires_grad_(True)
    lam = torch.tensor(0.4, requires_grad=True)
    value = st_k(losses, lam, 37, delta=0.01)
    value.backward()
    ref_value, ref_grad, ref_lam_grad = reference_st_k(losses, lam, 37, 0.01)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert value.item() == pytest.approx(ref_value.item(), rel=tol)
    torch.testing.assert_close(losses.grad.double(), ref_grad, rtol=tol, atol=tol * 1e-3)
    assert lam.grad.item() == pytest.approx(ref_lam_grad.item(), abs=1e-6)  # lam's gradient is in lam's fp32
