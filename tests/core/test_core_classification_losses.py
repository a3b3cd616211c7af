"""Per-sample losses and the criterion adapter against hand-written formulas in float64."""

import math

import numpy as np
import pytest
import torch

from stk_nmt.core import srelu
from stk_nmt.vision import LongTailCriterion, build_loss
from stk_nmt.vision.losses import ldam_margins

COUNTS = [50, 20, 8, 2]


def batch(n=12, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=g, dtype=torch.float64) * 2, torch.randint(0, classes, (n,), generator=g)


def softmax_nll(z, y):
    """-log softmax(z)[y] per row, by numpy log-sum-exp."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - z[np.arange(len(y)), y]


def test_cross_entropy_per_sample():
    z, y = batch()
    got = build_loss("ce")(z, y)
    assert got.shape == (12,)
    assert np.allclose(got.numpy(), softmax_nll(z.numpy(), y.numpy()), atol=1e-5)


def test_logit_adjusted_and_balanced_softmax():
    z, y = batch()
    prior = np.array(COUNTS, dtype=np.float64) / sum(COUNTS)
    for tau in (0.5, 1.0, 2.0):
        got = build_loss("logit-adjusted", COUNTS, tau=tau)(z, y)
        assert np.allclose(got.numpy(), softmax_nll(z.numpy() + tau * np.log(prior), y.numpy()), atol=1e-5)
    # Balanced softmax (Ren et al. 2020): softmax weighted by the raw counts n_c.
    zn, yn = z.numpy(), y.numpy()
    weighted = np.asarray(COUNTS) * np.exp(zn)
    expected = -np.log(weighted[np.arange(12), yn] / weighted.sum(axis=1))
    assert np.allclose(build_loss("balanced-softmax", COUNTS)(z, y).numpy(), expected, atol=1e-5)


def test_ldam_margins_and_loss():
    margins = ldam_margins(COUNTS, max_m=0.5).double().numpy()
    assert margins[3] == pytest.approx(0.5)  # the rarest class gets max_m
    assert margins[0] == pytest.approx(0.5 * (2 / 50) ** 0.25, rel=1e-6)
    z, y = batch()
    zn, yn = z.numpy().copy(), y.numpy()
    zn[np.arange(12), yn] -= margins[yn]
    expected = softmax_nll(30.0 * zn, yn)
    assert np.allclose(build_loss("ldam", COUNTS)(z, y).numpy(), expected, rtol=1e-5, atol=1e-4)


def test_topk_hinge_losses_per_sample():
    z, y = batch(classes=6)
    torch.manual_seed(3)
    got = build_loss("topk-hinge", topk=2, epsilon=1e-6, n_samples=1)(z.float(), y)
    # With negligible noise: (1 + third largest score - s_y)_+
    third = np.sort(z.numpy(), axis=1)[:, -3]
    expected = np.maximum(0, 1 + third - z.numpy()[np.arange(12), y.numpy()])
    assert got.shape == (12,) and np.allclose(got.numpy(), expected, atol=1e-4)
    counts = [60, 30, 20, 10, 5, 1]
    got = build_loss("topk-hinge-imbalanced", counts, topk=2, epsilon=1e-6, n_samples=1, max_m=0.2, scale=50.0)(z.float(), y)
    m = 0.2 * (1 / np.asarray(counts, dtype=np.float64)) ** 0.25
    expected = np.maximum(0, 50 * (m[y.numpy()] + third - z.numpy()[np.arange(12), y.numpy()]))
    assert np.allclose(got.numpy(), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["ce", "logit-adjusted", "ldam", "topk-hinge"])
def test_labels_out_of_range(name):
    loss = build_loss(name, COUNTS, topk=1)
    z = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="label"):
        loss(z, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="label"):
        loss(z, torch.tensor([0, -1, 1]))


def test_bad_counts_and_names():
    with pytest.raises(ValueError, match="class_counts"):
        build_loss("logit-adjusted", [10, 0, 3])
    with pytest.raises(ValueError, match="class_counts is required"):
        build_loss("ldam", None)
    with pytest.raises(ValueError, match="loss must be one of"):
        build_loss("focal")
    with pytest.raises(ValueError, match="logits have 4 classes but log_prior has 3"):
        build_loss("logit-adjusted", [3, 2, 1])(torch.zeros(2, 4), torch.tensor([0, 1]))


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
