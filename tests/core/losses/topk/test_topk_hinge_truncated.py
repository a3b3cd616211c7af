"""Truncated perturbed top-k: noise only on the classes near each row's k-th score.

Checked against the dense operator (itself checked against pytopk 0.1.0) with the same noise, the
documented bound on the probability that truncation changes a row, and the dense fallback.
"""

import importlib
import math

import pytest
import torch

from stk_nmt.core import BalancedTopKHinge, noised_topk_hinge, perturbed_topk
from stk_nmt.core.losses.topk import truncation_margin

pytopk = pytest.importorskip("pytopk")
ptk = importlib.import_module("stk_nmt.core.losses.topk.perturbed")  # the operator's module
sel = importlib.import_module("stk_nmt.core.selection")


def candidate_counts(scores, k, margin):
    """Per row, the classes scoring at least (the row's k-th largest score) - margin, by a plain topk."""
    return (scores >= torch.topk(scores, k, dim=1).values[:, k - 1 : k] - margin).sum(dim=1, dtype=torch.int32)


def loss_and_grad(fn, scores):
    s = scores.clone().requires_grad_(True)
    value = fn(s)
    (grad,) = torch.autograd.grad(value.sum(), s)
    return value.detach(), grad


def peaked_batch(B, L, S, seed, spread=4.0):
    """Scores with a spread like trained logits: few classes near the top-k."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, L, generator=g) * spread
    labels = torch.randint(0, L, (B,), generator=g)
    return scores, labels, torch.randn(B, L, S, generator=g)


def bound_holds(scores, noise, k, epsilon, margin):
    """Per row, the sufficient condition of the bound, checked by brute force: in every draw every
    class below (k-th score - margin) stays below every one of the k top classes."""
    top = torch.topk(scores, k, dim=1)
    outside = scores < top.values[:, k - 1 : k] - margin  # (B, L)
    perturbed = scores[:, :, None] + epsilon * noise  # (B, L, S)
    lowest_top = perturbed.gather(1, top.indices[:, :, None].expand(-1, -1, noise.shape[2])).amin(dim=1)  # (B, S)
    best_outside = perturbed.masked_fill(~outside[:, :, None], -math.inf).amax(dim=1)  # (B, S)
    return (best_outside < lowest_top).all(dim=1)


def test_margin_meets_the_union_bound():
    for L, k, S, eps, tol in [(10_000, 6, 5, 1.0, 1e-6), (50, 3, 4, 0.3, 0.05), (1000, 1, 1, 2.0, 1e-9)]:
        m = truncation_margin(L, k, S, eps, tol)
        q = 0.5 * math.erfc(m / (eps * math.sqrt(2)) / math.sqrt(2))  # P(eps (Z1 - Z2) > m)
        assert S * k * (L - k) * q == pytest.approx(tol, rel=1e-6)
    assert truncation_margin(5, 5, 3, 1.0, 1e-6) == 0.0  # no class can lie outside
    assert truncation_margin(100, 3, 5, 0.0, 1e-6) == 0.0


@pytest.mark.parametrize("mode", ["truncated", "auto"])
def test_same_noise_same_values_and_gradients(mode):
    B, L, S, K, eps = 48, 400, 5, 3, 0.3
    scores, labels, noise = peaked_batch(B, L, S, seed=1)
    scores[:4] *= 0.05  # a few flat rows: many candidates, padded widths differ
    margin = truncation_margin(L, K + 1, S, eps, 1e-6)
    assert bound_holds(scores, noise, K + 1, eps, margin).all()  # so every row must agree
    counts = candidate_counts(scores, K + 1, margin)
    assert int(counts[4:].max()) < L // 4 < int(counts[:4].min())  # truncation really happens
    ref, ref_grad = loss_and_grad(
        lambda s: noised_topk_hinge(s, labels, K, eps, S, noise=noise, noise_mode="dense", reduction="none"), scores)
    out, grad = loss_and_grad(
        lambda s: noised_topk_hinge(s, labels, K, eps, S, noise=noise, noise_mode=mode, reduction="none"), scores)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)
    # The operator alone, and the imbalanced hinge (margins and scale), likewise.
    ref, ref_grad = loss_and_grad(lambda s: perturbed_topk(s, 2, eps, S, noise=noise, noise_mode="dense"), scores)
    out, grad = loss_and_grad(lambda s: perturbed_topk(s, 2, eps, S, noise=noise, noise_mode=mode), scores)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)
    margins = torch.rand(L, generator=torch.Generator().manual_seed(2))
    kw = dict(margins=margins, scale=3.0, noise=noise, reduction="sum")
    ref, ref_grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, eps, S, noise_mode="dense", **kw), scores)
    out, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, eps, S, noise_mode=mode, **kw), scores)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)


def test_truncated_matches_pytopk_and_draws_little_noise():
    B, L, S, K, eps = 16, 2000, 5, 5, 0.5
    scores, labels, noise = peaked_batch(B, L, S, seed=3)
    from pytopk.functional import bal_noised_topk_loss
    from pytopk.noised_topk import _noised_topk

    ref = bal_noised_topk_loss(scores, labels, K, eps, _noised_topk, noise)
    out = noised_topk_hinge(scores, labels, K, eps, S, noise=noise, noise_mode="truncated")
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    # From a generator, truncated rows draw (rows, C, S) noise with C far below L.
    drawn = []
    real_randn = torch.randn

    def counting_randn(*size, **kw):
        out = real_randn(*size, **kw)
        drawn.append(out.numel())
        return out

    torch.randn = counting_randn
    try:
        noised_topk_hinge(scores, labels, K, eps, S, generator=torch.Generator().manual_seed(0), noise_mode="truncated")
    finally:
        torch.randn = real_randn
    n_candidates = int(candidate_counts(scores, K + 1, truncation_margin(L, K + 1, S, eps, 1e-6)).max())
    assert n_candidates < L // 10 and drawn == [B * n_candidates * S]


def edge_rows(B, L, k, margin, gap):
    """The k top classes at 0, every other class at -(margin + gap): all just outside the candidates."""
    scores = torch.full((B, L), -(margin + gap))
    scores[:, :k] = 0.0
    return scores


@pytest.mark.parametrize("margin_scale", [1.0, 1 / math.sqrt(2), 0.25])
def test_disagreement_rate_stays_under_the_bound(monkeypatch, margin_scale):
    """Many independent draws of rows sitting at the edge of the bound (where it is nearly tight):
    the fraction of rows whose truncated result differs from the dense one stays under the tolerance
    with the documented margin, and exceeds it with a margin too small (1/sqrt(2): the noise gap's
    std taken as eps instead of eps sqrt(2); 0.25), so the test cannot pass a wrong margin."""
    B, L, S, k, eps, tol = 20_000, 30, 4, 3, 1.0, 0.05
    margin = truncation_margin(L, k, S, eps, tol)
    monkeypatch.setattr(ptk, "truncation_margin", lambda *a: margin_scale * truncation_margin(*a))
    scores = edge_rows(B, L, k, margin_scale * margin, gap=1e-4)
    noise = torch.randn(B, L, S, generator=torch.Generator().manual_seed(11))
    dense = perturbed_topk(scores, k, eps, S, noise=noise, noise_mode="dense")
    truncated = perturbed_topk(scores, k, eps, S, noise=noise, noise_mode="truncated", tolerance=tol)
    rate = float((dense != truncated).float().mean())
    print(f"margin x{margin_scale:.3f}: disagreement rate {rate:.4f}, tolerance {tol}")
    if margin_scale == 1.0:
        assert 0.2 * tol < rate <= tol  # the bound is nearly tight here, and holds
    else:
        assert rate > tol


def test_flat_rows_take_the_dense_path(monkeypatch):
    B, L, S, K, eps = 12, 300, 5, 2, 0.5
    scores, labels, noise = peaked_batch(B, L, S, seed=4)
    flat = torch.arange(B) % 3 == 0
    scores[flat] = 1e-3 * scores[flat]  # every class within the margin
    calls = {"dense": [], "truncated": []}
    real_dense, real_truncated = ptk.dense_draws, ptk.truncated_draws
    monkeypatch.setattr(ptk, "dense_draws", lambda s, *a: calls["dense"].append(s.clone()) or real_dense(s, *a))
    monkeypatch.setattr(ptk, "truncated_draws", lambda s, *a: calls["truncated"].append(s.clone()) or real_truncated(s, *a))
    out = noised_topk_hinge(scores, labels, K, eps, S, noise=noise, reduction="none")  # auto
    assert [c.shape[0] for c in calls["dense"]] == [int(flat.sum())]
    assert torch.equal(calls["dense"][0], scores[flat])
    # The other rows went truncated: their candidate scores (padded with -inf), far fewer than L.
    cand = calls["truncated"][0]
    assert cand.shape[0] == int((~flat).sum()) and cand.shape[1] < L // 4
    assert torch.equal(cand.amax(dim=1), scores[~flat].amax(dim=1))
    assert torch.equal(torch.isfinite(cand).sum(dim=1),
                       candidate_counts(scores[~flat], K + 1, truncation_margin(L, K + 1, S, eps, 1e-6)))
    ref = noised_topk_hinge(scores, labels, K, eps, S, noise=noise, noise_mode="dense", reduction="none")
    assert torch.equal(out, ref)
    # All rows flat: "auto" is the dense path itself, so from a seed it draws pytopk's numbers.
    calls["dense"].clear()
    calls["truncated"].clear()
    flat_scores = 1e-3 * scores
    torch.manual_seed(5)
    ref = pytopk.BalNoisedTopK(k=K, epsilon=eps, n_sample=S)(flat_scores, labels)
    torch.manual_seed(5)
    out = BalancedTopKHinge(K, eps, S, chunk_elements=16 * L * S)(flat_scores, labels)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    assert len(calls["dense"]) == 1 and not calls["truncated"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(noise_mode="sparse"), "noise_mode must be one of .* got noise_mode='sparse'"),
    (dict(tolerance=0.0), r"tolerance must be a number in \(0, 1\), got tolerance=0.0"),
    (dict(tolerance=1.5), r"tolerance=1.5"),
    (dict(tolerance=float("nan")), r"tolerance=nan"),
])
def test_bad_noise_mode_and_tolerance(kwargs, match):
    scores, labels, _ = peaked_batch(2, 10, 1, seed=0)
    with pytest.raises(ValueError, match=match):
        noised_topk_hinge(scores, labels, 2, **kwargs)
    with pytest.raises(ValueError, match=match):
        BalancedTopKHinge(2, **kwargs)
    with pytest.raises(ValueError, match=match):
        perturbed_topk(scores, 2, **kwargs)


@pytest.mark.parametrize("L,k", [(5000, 6), (4099, 1), (8192, 40)])
def test_blocked_selection_is_torch_topk(L, k):
    """The dense path's blocked selection (wide rows) returns torch.topk's k-th value and class."""
    blocks = sel.select_blocks(L, k)
    assert blocks is not None
    g = torch.Generator().manual_seed(L)
    perturbed = torch.full((3, 4, blocks * sel.BLOCK_WIDTH), -math.inf)
    perturbed[:, :, :L] = torch.randn(3, 4, L, generator=g) * 3
    value, index = sel.kth_along_last(perturbed, k, blocks)
    top = torch.topk(perturbed[:, :, :L], k, dim=2)
    assert torch.equal(value, top.values[:, :, k - 1]) and torch.equal(index, top.indices[:, :, k - 1])
    # And the whole dense operator against a brute-force sort, same noise.
    scores = torch.randn(3, L, generator=g)
    noise = torch.randn(3, L, 2, generator=g)
    out = perturbed_topk(scores, k, 0.5, 2, noise=noise, noise_mode="dense")
    brute = (scores[:, :, None] + 0.5 * noise).sort(dim=1, descending=True).values[:, k - 1, :].mean(dim=1)
    assert torch.equal(out, brute)


def test_few_candidates_wide_rows_same_noise():
    """Wide, peaked rows (a few dozen candidates out of 6000) agree with the dense operator
    (blocked selection) for the same noise, values and gradients, where the bound's condition holds."""
    B, L, S, K, eps = 6, 6000, 3, 4, 0.2
    scores, labels, noise = peaked_batch(B, L, S, seed=9, spread=6.0)
    margin = truncation_margin(L, K + 1, S, eps, 1e-6)
    assert bound_holds(scores, noise, K + 1, eps, margin).all()
    assert int(candidate_counts(scores, K + 1, margin).max()) <= L // 64
    ref, ref_grad = loss_and_grad(
        lambda s: noised_topk_hinge(s, labels, K, eps, S, noise=noise, noise_mode="dense", reduction="none"), scores)
    out, grad = loss_and_grad(
        lambda s: noised_topk_hinge(s, labels, K, eps, S, noise=noise, reduction="none"), scores)
    assert torch.equal(out, ref) and torch.equal(grad, ref_grad)


@pytest.mark.parametrize("L", [5003, 8000])  # padded to whole blocks / exact
@pytest.mark.parametrize("k", [1, 6])
def test_kth_largest_values_is_torch_topk_with_ties(L, k):
    g = torch.Generator().manual_seed(L + k)
    scores = torch.randn(9, L, generator=g)
    scores[0] = 1.0  # a row of ties
    scores[1, :20] = scores[1].max() + 1  # ties at the top
    scores[2] = torch.randint(0, 4, (L,), generator=g).float()  # few distinct values
    assert sel.select_blocks(L, k) is not None  # the blocked selection is what is tested
    expect = torch.topk(scores, k, dim=1).values[:, k - 1 : k]
    assert torch.equal(sel.select_kth_largest(scores, k)[:, None], expect)
    assert torch.equal(sel.select_kth_largest(scores[:, :100], k)[:, None],
                       torch.topk(scores[:, :100], k, dim=1).values[:, k - 1 : k])
