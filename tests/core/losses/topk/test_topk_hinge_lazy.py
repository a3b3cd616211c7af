"""The lazy sampler (noise_mode="lazy", and "auto" with drawn noise): exact in distribution.

The reference is computed independently of any sampler: the law of the k-th largest of independent
N(s_j, eps^2) by numerical integration (a Poisson-binomial recursion on a grid), and the law of the
top order statistics of n normals by sorting torch.randn.
"""

import importlib
import math

import numpy as np
import pytest
import torch
from scipy import stats

from stk_nmt.core import noised_topk_hinge, perturbed_topk
from stk_nmt.core.losses.topk import lazy as lazy_noise

ptk = importlib.import_module("stk_nmt.core.losses.topk.perturbed")  # the operator's module

EPS = 1.0


def exact_kth_law(scores, k, eps, grid_points=8001):
    """E[k-th largest of s + eps Z] and P(class j is the k-th largest), by integration over x.

    P(X_(k) <= x) = P(fewer than k classes above x); P(j is the k-th largest) integrates the density
    of v_j against P(exactly k - 1 of the others above x).
    """
    s = np.asarray(scores, dtype=np.float64)
    x = np.linspace(s.min() - 9 * eps, s.max() + 9 * eps, grid_points)
    above = stats.norm.sf((x[None, :] - s[:, None]) / eps)  # (L, grid): P(v_j > x)

    def counts_below_k(p_rows):
        c = np.zeros((k, x.size))
        c[0] = 1.0
        for p in p_rows:
            c[1:] = c[1:] * (1 - p) + c[:-1] * p
            c[0] = c[0] * (1 - p)
        return c  # c[i] = P(exactly i above x), i < k

    cdf = counts_below_k(above).sum(axis=0)
    mean = np.trapezoid(np.where(x > 0, 1 - cdf, 0.0), x) - np.trapezoid(np.where(x < 0, cdf, 0.0), x)
    density = stats.norm.pdf((x[None, :] - s[:, None]) / eps) / eps
    probs = np.array([
        np.trapezoid(density[j] * counts_below_k(np.delete(above, j, axis=0))[k - 1], x) for j in range(s.size)
    ])
    return mean, probs


def skewed_row(L=100, seed=0):
    """A few clear leaders, a cluster just below them, the bulk far below: head, completions and tail."""
    g = torch.Generator().manual_seed(seed)
    row = 0.7 * torch.randn(L, generator=g, dtype=torch.float64) - 1.0
    row[:5] = torch.tensor([4.0, 3.6, 3.3, 3.0, 2.8], dtype=torch.float64)
    row[5:17] = 1.85  # just below the default head threshold, 3.3 - 1.405
    return row.float()


def lazy_sample(row, k, n_rows, n_samples, seed):
    scores = row[None, :].expand(n_rows, -1).contiguous()
    g = torch.Generator().manual_seed(seed)
    values, indices = ptk.select_draws(scores, k, EPS, n_samples, generator=g, noise_mode="lazy")
    return values.double(), indices


def agreement(row, k, values, indices, exact_mean, exact_probs):
    """(|z| of the mean against the exact mean, chi-square p-value of the selected classes)."""
    z = (values.mean().item() - exact_mean) / (values.std().item() / math.sqrt(values.numel()))
    observed = torch.bincount(indices.reshape(-1), minlength=row.numel()).double().numpy()
    expected = exact_probs / exact_probs.sum() * observed.sum()
    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    return abs(z), stats.chisquare(obs, exp).pvalue


@pytest.fixture(scope="module")
def reference():
    row = skewed_row()
    return row, exact_kth_law(row.numpy(), 3, EPS)


MARGINS = {  # head thresholds: the default (per row, wide here), the narrow margin d, and a tiny one
    "default": None,
    "narrow": lambda scores, kth, eps: kth - lazy_noise.lazy_margin(scores.shape[1], eps),
    "small": lambda scores, kth, eps: kth - 0.3 * eps,
}


@pytest.mark.parametrize("margin,min_completed", [("default", 0.0), ("narrow", 0.001), ("small", 0.3)])
def test_lazy_draws_follow_the_exact_law(reference, monkeypatch, margin, min_completed):
    """The mean k-th largest and the frequency of each selected class match the integrated law, with
    the default thresholds, the narrow margin d (some draws completed) and a margin so small that
    most draws need their completion (exactness must not depend on the margin)."""
    row, (exact_mean, exact_probs) = reference
    completed = []
    real_complete = lazy_noise._complete

    def counting_complete(*args, **kwargs):
        completed.append(args[-4][0].numel())  # pairs
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(lazy_noise, "_complete", counting_complete)
    if MARGINS[margin] is not None:
        monkeypatch.setattr(ptk, "lazy_thresholds", MARGINS[margin])
    n_rows, n_samples = 30_000, 2
    values, indices = lazy_sample(row, 3, n_rows, n_samples, seed=1)
    z, p = agreement(row, 3, values, indices, exact_mean, exact_probs)
    assert z < 4.5 and p > 1e-4, (z, p)
    share = sum(completed) / (n_rows * n_samples)
    assert share >= min_completed, share


def test_the_law_check_rejects_a_sampler_without_completion(reference, monkeypatch):
    """Power: skipping the completion of the draws whose bound fails (keeping the head and placed
    values' k-th largest) gives a visibly different law, so the test above cannot pass it."""
    row, (exact_mean, exact_probs) = reference

    def no_completion(scores, thresholds, cand_index, where, tail_z, tail_scaled, perturbed, chosen, kth, pairs, *rest):
        return kth[pairs], chosen[pairs]

    monkeypatch.setattr(lazy_noise, "_complete", no_completion)
    monkeypatch.setattr(ptk, "lazy_thresholds", MARGINS["small"])
    values, indices = lazy_sample(row, 3, 30_000, 2, seed=1)
    z, p = agreement(row, 3, values, indices, exact_mean, exact_probs)
    assert z > 6 or p < 1e-8, (z, p)


def test_dense_monte_carlo_agrees_with_the_integrated_law(reference):
    """The reference itself: the dense operator (pytopk's) against the integration."""
    row, (exact_mean, exact_probs) = reference
    scores = row[None, :].expand(30_000, -1).contiguous()
    values, indices = ptk.dense_draws(scores, 3, EPS, 2, generator=torch.Generator().manual_seed(2))
    z, p = agreement(row, 3, values.double(), indices, exact_mean, exact_probs)
    assert z < 4.5 and p > 1e-4, (z, p)


def test_tail_order_statistics_match_sorted_normals():
    n, m, rows = 50, 4, 20_000
    g = torch.Generator().manual_seed(3)
    top = lazy_noise.tail_order_statistics(torch.full((rows,), n), 1, m, g)[:, 0, :]
    assert bool((top[:, 1:] <= top[:, :-1]).all())
    brute = torch.randn(rows, n, generator=g).topk(m, dim=1).values
    for i in range(m):
        assert stats.ks_2samp(top[:, i].numpy(), brute[:, i].numpy()).pvalue > 1e-3, i
    # and the law's mean for the maximum of 50 normals (2.2491, tabulated) to within 4 standard errors
    assert abs(top[:, 0].mean().item() - 2.2491) < 4 * top[:, 0].std().item() / math.sqrt(rows)


def test_tail_positions_are_distinct_uniform_tail_classes():
    """Two rows with scattered heads of different sizes: every position lies in the row's tail,
    the m positions of a draw are distinct, and each is uniform over the tail (chi-square)."""
    from stk_nmt.core.losses.topk.candidates import gather_candidates

    L, m, rows = 40, 6, 6_000
    heads = [[0, 3, 4, 17, 18, 19, 25, 38, 39], [1, 2, 10, 11, 12, 13, 14, 30, 31, 32, 33, 34, 35, 36, 37]]
    mask = torch.zeros(rows, L, dtype=torch.bool)
    for r in range(rows):
        mask[r, heads[r % 2]] = True
    counts = mask.sum(dim=1)
    _, cand_index = gather_candidates(torch.randn(rows, L), mask, counts, int(counts.max()))
    where = lazy_noise.tail_positions(cand_index, counts, L, 2, m, torch.Generator().manual_seed(4))
    assert where.shape == (rows, 2, m)
    assert not bool(mask.gather(1, where.view(rows, -1)).any())  # never a head class
    srt = where.sort(dim=2).values
    assert not bool((srt[..., 1:] == srt[..., :-1]).any())
    for parity, head in enumerate(heads):
        tail = [c for c in range(L) if c not in head]
        for slot in (0, m - 1):  # each position is uniform over the row's tail classes
            counts_by_class = torch.bincount(where[parity::2, :, slot].reshape(-1), minlength=L).numpy()
            assert stats.chisquare(counts_by_class[tail]).pvalue > 1e-3


def test_lazy_gradient_and_hinge_on_spread_rows():
    """The hinge on lazy rows: its gradient is the mean of the S selected one-hots minus the
    label's, so each row's gradient sums to 0 and carries +1/S at each selected class."""
    g = torch.Generator().manual_seed(5)
    scores = (3 * torch.randn(64, 500, generator=g)).requires_grad_()
    labels = torch.randint(0, 500, (64,), generator=g)
    loss = noised_topk_hinge(scores, labels, 5, 1.0, 4, generator=g, noise_mode="lazy", reduction="sum")
    loss.backward()
    torch.testing.assert_close(scores.grad.sum(dim=1), torch.zeros(64), atol=1e-6, rtol=0)
    assert torch.isfinite(loss)


def test_lazy_refuses_a_given_noise_tensor():
    scores = torch.randn(4, 100)
    with pytest.raises(ValueError, match="noise_mode='lazy'"):
        perturbed_topk(scores, 3, 1.0, 2, noise=torch.randn(4, 100, 2), noise_mode="lazy")
    with pytest.raises(ValueError, match="noise_mode='lazy'"):
        noised_topk_hinge(scores, torch.zeros(4, dtype=torch.long), 3, 1.0, 2, noise=torch.randn(4, 100, 2),
                          noise_mode="lazy")


def test_auto_stays_dense_and_on_pytopks_stream_for_flat_rows():
    """Flat rows (most classes near the k-th largest) take the dense path in auto: the same numbers
    as a dense call from the same seed."""
    scores = 0.1 * torch.randn(32, 400, generator=torch.Generator().manual_seed(6))
    labels = torch.zeros(32, dtype=torch.long)
    auto = noised_topk_hinge(scores, labels, 5, 1.0, 3, generator=torch.Generator().manual_seed(7), reduction="none")
    dense = noised_topk_hinge(scores, labels, 5, 1.0, 3, generator=torch.Generator().manual_seed(7), reduction="none",
                              noise_mode="dense")
    torch.testing.assert_close(auto, dense, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["auto", "lazy", "truncated", "dense"])
@pytest.mark.parametrize("K", [5, 12])  # k = K + 1 below and above the 8 placed tail values
@pytest.mark.parametrize("bad_rows", [16, 64])
def test_a_batch_with_nan_rows_does_not_crash(mode, K, bad_rows):
    """An fp16 overflow gives NaN logits for some or all rows of a batch; fairseq then skips the
    update, so the loss must come back (NaN for those rows, as the dense operator gives), not raise."""
    g = torch.Generator().manual_seed(0)
    scores = 3 * torch.randn(64, 3000, generator=g)
    scores[:bad_rows] = float("nan")
    scores.requires_grad_()
    labels = torch.randint(0, 3000, (64,), generator=g)
    losses = noised_topk_hinge(scores, labels, K, 1.0, 4, generator=g, noise_mode=mode, reduction="none")
    losses.sum().backward()
    assert bool(losses[:bad_rows].isnan().all())
    assert bool(torch.isfinite(losses[bad_rows:]).all())


def test_auto_makes_no_host_synchronisation_off_the_cpu():
    """On an accelerator "auto" is the dense path, which reads nothing back to the host (the lazy
    and truncated paths read counts and redraw): on the meta device, where any read-back raises,
    the operator runs and gives the shapes. On the CPU "auto" stays lazy (spread rows, many classes)."""
    scores = torch.empty(64, 3000, device="meta")
    values, indices = ptk.select_draws(scores, 6, 1.0, 5, noise_mode="auto")
    assert values.shape == (64,) and indices.shape == (64, 5) and values.device.type == "meta"
    values, indices = ptk.select_draws(scores, 6, 1.0, 5, noise=torch.empty(64, 3000, 5, device="meta"))
    assert values.shape == (64,)
    with pytest.raises(Exception):  # the lazy path does read back: the check above can fail
        ptk.select_draws(scores, 6, 1.0, 5, noise_mode="lazy")
    assert ptk.auto_noise_mode(torch.device("cuda"), noise_given=False, n_classes=32_000) == "dense"
    assert ptk.auto_noise_mode(torch.device("cpu"), noise_given=False, n_classes=32_000) == "lazy"
    assert ptk.auto_noise_mode(torch.device("cpu"), noise_given=True, n_classes=32_000) == "truncated"
    assert ptk.auto_noise_mode(torch.device("cpu"), noise_given=False, n_classes=1000) == "dense"


def test_the_hinge_reads_nothing_back_off_the_cpu():
    """On an accelerator the hinge (forward and backward, default noise_mode) makes no host
    synchronisation: on the meta device any read-back raises. Label ranges are then left to the
    device's own index checks, as torch's cross-entropy does; on the CPU they raise a ValueError."""
    scores = torch.empty(32, 3000, device="meta", requires_grad=True)
    labels = torch.empty(32, dtype=torch.long, device="meta")
    rows = torch.empty(32, dtype=torch.long, device="meta")
    for kwargs in ({}, {"rows": rows}):
        losses = noised_topk_hinge(scores, labels, 5, 1.0, 4, reduction="none", **kwargs)
        losses.sum().backward()
        assert losses.shape == (32,) and scores.grad.shape == (32, 3000)
    with pytest.raises(ValueError, match="labels must lie in"):
        noised_topk_hinge(torch.randn(4, 10), torch.tensor([0, 1, 2, 10]), 2, 1.0, 2)


def test_chunks_are_cache_sized_on_the_cpu_and_large_elsewhere():
    """A fairseq batch (4,000 tokens, 32,000 words, S = 5): on the CPU a chunk is about one row
    (1 MiB buffers, in cache); on an accelerator chunks of 2**24 elements (about a hundred rows)
    keep the number of kernel launches per call small."""
    cpu = ptk.chunk_rows(4000, 32_000 * 5, None, torch.device("cpu"))
    gpu = ptk.chunk_rows(4000, 32_000 * 5, None, torch.device("cuda"))
    assert cpu == 1 and gpu == (1 << 24) // (32_000 * 5)
    assert ptk.chunk_rows(4000, 32_000 * 5, 1 << 20, torch.device("cuda")) == 6  # an explicit bound wins
    values, _ = ptk.dense_draws(torch.empty(4000, 32_000, device="meta"), 6, 1.0, 5)
    assert values.shape == (4000,)
