"""LongTailCriterion (a per-sample loss and a core aggregate) against hand-written formulas in float64."""

import math

import numpy as np
import pytest
import torch

from logits_reference import batch, softmax_nll
from stk_nmt.core import srelu
from stk_nmt.vision import LongTailCriterion


def test_criterion_stk_value_and_lam_group():
    z, y = batch(n=20)
    z = z.float().requires_grad_()
    crit = LongTailCriterion("ce", aggregate="stk", k_ratio=0.9)
    value = crit(z, y)
    losses = softmax_nll(z.detach().numpy(), y.numpy())
    k = math.ceil(0.9 * 20)
    lam = np.sort(losses)[::-1][k - 1]  # first call: lam = the k-th largest loss
    assert crit.lam == pytest.approx(lam, rel=1e-5)
    expected = srelu(torch.tensor(losses - lam), 0.01).mean().item() + k / 20 * lam
    assert float(value.detach()) == pytest.approx(expected, rel=1e-5)
    groups = crit.param_groups(lr=0.5)
    assert len(groups) == 1 and groups[0]["params"][0] is crit.aggregate.lam
    assert groups[0]["lr"] == 0.5 and groups[0]["weight_decay"] == 0.0
    # lam moves when its group reaches the optimizer: d/dlam = k/n - mean SReLU'(l - lam).
    opt = torch.optim.SGD(groups, lr=0.5)
    value.backward()
    grad = k / 20 - np.mean(0.5 * (1 + (losses - lam) / np.sqrt((losses - lam) ** 2 + 1e-4)))
    assert float(crit.aggregate.lam.grad) == pytest.approx(grad, rel=1e-4, abs=1e-6)
    opt.step()
    assert crit.lam == pytest.approx(lam - 0.5 * grad, rel=1e-5, abs=1e-6)


def test_criterion_other_aggregates():
    z, y = batch(n=10)
    losses = np.sort(softmax_nll(z.numpy(), y.numpy()))[::-1]
    assert float(LongTailCriterion("ce", aggregate="average")(z, y)) == pytest.approx(losses.mean(), rel=1e-6)
    assert float(LongTailCriterion("ce", aggregate="atk", k_ratio=0.5)(z, y)) == pytest.approx(losses[:5].mean(), rel=1e-6)
    assert float(LongTailCriterion("ce", aggregate="atk", k=3)(z, y)) == pytest.approx(losses[:3].mean(), rel=1e-6)
    assert float(LongTailCriterion("ce", aggregate="maximum")(z, y)) == pytest.approx(losses[0], rel=1e-6)
    assert LongTailCriterion("ce", aggregate="average").param_groups() == []
    with pytest.raises(ValueError, match="k_ratio"):
        LongTailCriterion("ce", aggregate="stk", k_ratio=1.5)
