"""Per-sample losses against hand-written formulas in float64."""

import numpy as np
import pytest
import torch

from logits_reference import batch, softmax_nll
from stk_nmt.core.losses import build_loss, ldam_margins

COUNTS = [50, 20, 8, 2]


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
