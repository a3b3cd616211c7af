"""SReLU identities and the smoother variants, against closed forms and finite differences."""

import math

import pytest
import torch
import torch.nn.functional as F

from stk_nmt.core import get_smoother, srelu, srelu_grad


def test_srelu_is_zero_at_zero():
    for delta in (1.0, 0.1, 0.01, 1e-4):
        assert srelu(torch.zeros(1, dtype=torch.float64), delta).item() == 0.0


@pytest.mark.parametrize("delta", [1.0, 0.1, 0.01])
def test_gap_to_relu_is_in_zero_half_delta(delta):
    x = torch.linspace(-50, 50, 200_001, dtype=torch.float64)
    gap = F.relu(x) - srelu(x, delta)
    assert gap.min().item() >= 0.0
    assert gap.max().item() < delta / 2
    # The bound is tight: far on the negative side the gap approaches delta / 2.
    assert gap.max().item() > delta / 2 * 0.99


def test_uniform_convergence_to_relu():
    x = torch.linspace(-1e3, 1e3, 400_001, dtype=torch.float64)
    sups = [(F.relu(x) - srelu(x, d)).abs().max().item() for d in (1.0, 0.1, 0.01, 0.001)]
    assert all(a > b for a, b in zip(sups, sups[1:]))
    assert sups[-1] < 0.001 / 2


def test_srelu_matches_paper_closed_form():
    x = torch.tensor([-3.0, -0.02, 0.0, 0.005, 0.7, 2.0], dtype=torch.float64)
    d = 0.01
    paper = 0.5 * (x + d * (torch.sqrt(x**2 / d**2 + 1) - 1))
    torch.testing.assert_close(srelu(x, d), paper, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("delta", [0.5, 0.01])
def test_srelu_derivative_by_finite_differences(delta):
    x = torch.linspace(-2, 2, 401, dtype=torch.float64)
    h = 1e-6
    numeric = (srelu(x + h, delta) - srelu(x - h, delta)) / (2 * h)
    torch.testing.assert_close(srelu_grad(x, delta), numeric, rtol=1e-6, atol=1e-7)
    assert 0 < srelu_grad(x, delta).min() and srelu_grad(x, delta).max() < 1
    # autograd through srelu agrees with the closed-form derivative
    xr = x.clone().requires_grad_(True)
    srelu(xr, delta).sum().backward()
    torch.testing.assert_close(xr.grad, srelu_grad(x, delta))


def test_half_inputs_are_computed_in_fp32_without_overflow():
    x = torch.tensor([-300.0, -3.0, 0.0, 3.0, 300.0], dtype=torch.float16)
    out = srelu(x, 0.01)
    assert out.dtype == torch.float32
    reference = srelu(x.double(), 0.01)
    torch.testing.assert_close(out.double(), reference, rtol=1e-6, atol=1e-6)
    # The paper's form x^2/d^2 overflows in fp16 at |x| = 3 already (65504 is the largest half).
    assert math.isinf(float((x.float()[3] ** 2 / torch.tensor(1e-4)).half()))


def test_variants_are_the_framework_defaults():
    x = torch.linspace(-3, 3, 61)
    torch.testing.assert_close(get_smoother("elu")(x), F.elu(x))
    torch.testing.assert_close(get_smoother("softplus")(x), torch.log1p(torch.exp(x)))
    torch.testing.assert_close(get_smoother("leaky_relu")(x), torch.where(x > 0, x, 0.01 * x))
    torch.testing.assert_close(get_smoother("relu")(x), x.clamp(min=0))


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_delta_raises_naming_it(bad):
    with pytest.raises(ValueError, match="delta"):
        srelu(torch.zeros(3), bad)


def test_unknown_smoother_raises():
    with pytest.raises(ValueError, match="smoother.*'tanh'"):
        get_smoother("tanh")
