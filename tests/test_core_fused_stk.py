"""The fused ST_k where it is easy to get wrong: half-precision losses, higher-order gradients, and
losses far from lam. References are the formulas of docs/method.md written out here in float64,
the unfused autograd path (fused=False) and finite differences."""

import pytest
import torch
import torch.nn.functional as F

import stk_nmt.core.fused_stk as fused_stk
from stk_nmt.core import st_k


def reference_st_k(losses, lam, k, delta):
    """ST_k, d/dl_i and d/dlam in float64, from lam's own value (no rounding to the losses' dtype)."""
    x = losses.detach().double() - lam.detach().double()
    n = x.numel()
    r = torch.sqrt(x * x + delta * delta)
    value = (0.5 * (x + r - delta)).mean() + k / n * lam.detach().double()
    grad_losses = 0.5 * (1 + x / r) / n
    return value, grad_losses, k / n - grad_losses.sum()


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
