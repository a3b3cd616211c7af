"""Top-K hinge losses and the perturbed top-k operator against pytopk 0.1.0 and brute force."""

import numpy as np
import pytest
import torch

from stk_nmt.core import (
    BalancedTopKHinge,
    ImbalancedTopKHinge,
    PerturbedTopK,
    average,
    average_top_k,
    balanced_topk_hinge,
    build_aggregate,
    class_margins,
    imbalanced_topk_hinge,
    noised_topk_hinge,
    perturbed_topk,
    st_k,
)

pytopk = pytest.importorskip("pytopk")
from pytopk.functional import bal_noised_topk_loss, imbal_noised_topk_loss  # noqa: E402
from pytopk.noised_topk import _noised_topk  # noqa: E402

RTOL = 1e-6


def close(actual, expected, rtol=RTOL, atol=1e-7):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=False)


def make_batch(B, L, S, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, L, generator=g, dtype=dtype) * 2
    labels = torch.randint(0, L, (B,), generator=g)
    noise = torch.randn(B, L, S, generator=g)
    return scores, labels, noise


def zipf_counts(L, seed=0):
    rng = np.random.default_rng(seed)
    return (10_000 / np.arange(1, L + 1) ** 1.1).astype(np.int64)[rng.permutation(L)] + 1


def loss_and_grad(fn, scores):
    s = scores.clone().requires_grad_(True)
    value = fn(s)
    (grad,) = torch.autograd.grad(value, s)
    return value.detach(), grad


# (B, L, S, K, eps): K = 1, a single row (pytopk squeezes it), S = 1, wide rows, big noise
SHAPES = [(7, 20, 5, 3, 1.0), (1, 10, 5, 1, 0.5), (32, 100, 3, 1, 0.2), (16, 50, 10, 5, 1.0), (9, 300, 1, 10, 2.0)]


@pytest.mark.parametrize("B,L,S,K,eps", SHAPES)
def test_balanced_matches_pytopk(B, L, S, K, eps):
    scores, labels, noise = make_batch(B, L, S, seed=B * L + K)
    ref, ref_grad = loss_and_grad(lambda s: bal_noised_topk_loss(s, labels, K, eps, _noised_topk, noise), scores)
    ours, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, eps, S, noise=noise), scores)
    assert float(ref) > 0  # the hinge is active somewhere, so the gradient is exercised
    close(ours, ref)
    close(grad, ref_grad)
    named, named_grad = loss_and_grad(lambda s: balanced_topk_hinge(s, labels, K, eps, S, noise=noise), scores)
    close(named, ref)
    close(named_grad, ref_grad)


@pytest.mark.parametrize("B,L,S,K,eps", SHAPES)
def test_imbalanced_matches_pytopk(B, L, S, K, eps):
    scores, labels, noise = make_batch(B, L, S, seed=B * L + K + 1)
    counts = zipf_counts(L, seed=K)
    ref_module = pytopk.ImbalNoisedTopK(k=K, epsilon=eps, max_m=0.3, cls_num_list=counts, scale=7.0, n_sample=S)
    margins = class_margins(counts, 0.3)
    close(margins, ref_module.m_list, atol=0)
    ref, ref_grad = loss_and_grad(
        lambda s: imbal_noised_topk_loss(s, labels, K, ref_module.m_list, eps, _noised_topk, noise, 7.0), scores
    )
    ours, grad = loss_and_grad(lambda s: imbalanced_topk_hinge(s, labels, K, margins, eps, S, scale=7.0, noise=noise), scores)
    assert float(ref) > 0
    close(ours, ref)
    close(grad, ref_grad, atol=1e-6)


def test_float64_and_float16_scores():
    scores, labels, noise = make_batch(6, 40, 4, seed=3, dtype=torch.float64)
    ref, ref_grad = loss_and_grad(lambda s: bal_noised_topk_loss(s, labels, 2, 0.7, _noised_topk, noise), scores)
    ours, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, 2, 0.7, 4, noise=noise), scores)
    assert ours.dtype == torch.float64 and grad.dtype == torch.float64
    close(ours, ref, rtol=1e-12, atol=0)
    close(grad, ref_grad, rtol=1e-12, atol=0)
    # Half scores are computed in fp32: the same as feeding their fp32 values to pytopk.
    half = scores.half()
    ref, ref_grad = loss_and_grad(lambda s: bal_noised_topk_loss(s, labels, 2, 0.7, _noised_topk, noise), half.float())
    ours, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, 2, 0.7, 4, noise=noise), half)
    assert grad.dtype == torch.float16
    close(ours, ref)
    close(grad.float(), ref_grad, rtol=1e-3, atol=0)  # the gradient is rounded to fp16 on return


def test_per_example_losses_match_pytopk_row_by_row():
    scores, labels, noise = make_batch(10, 30, 5, seed=4)
    per_example = noised_topk_hinge(scores, labels, 2, 1.0, 5, noise=noise, reduction="none")
    assert per_example.shape == (10,)
    for i in range(10):
        ref = bal_noised_topk_loss(scores[i : i + 1], labels[i : i + 1], 2, 1.0, _noised_topk, noise[i : i + 1])
        close(per_example[i], ref)
    close(noised_topk_hinge(scores, labels, 2, 1.0, 5, noise=noise, reduction="sum"), per_example.sum())


def test_true_class_at_rank_k_plus_1():
    """Label exactly (K+1)-th: the hard loss is 1 with zero gradient; smoothed, it matches pytopk."""
    K, L = 3, 12
    scores = torch.arange(L, dtype=torch.float32).flip(0).repeat(4, 1) + torch.randn(4, L) * 0.01
    order = scores.argsort(dim=1, descending=True)
    labels = order[:, K]  # rank K+1 (1-based)
    hard, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, 0.0, 5, reduction="none").sum(), scores)
    close(hard, torch.tensor(4.0))
    assert torch.count_nonzero(grad) == 0  # the selected entry is the true class: the one-hots cancel
    noise = torch.randn(4, L, 5)
    ref, ref_grad = loss_and_grad(lambda s: bal_noised_topk_loss(s, labels, K, 0.3, _noised_topk, noise), scores)
    ours, ours_grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, 0.3, 5, noise=noise), scores)
    close(ours, ref)
    close(ours_grad, ref_grad)


@pytest.mark.parametrize("K", [1, 4])
def test_eps_zero_is_the_hard_calibrated_hinge(K):
    scores, labels, noise = make_batch(20, 15, 5, seed=K)
    ranked = np.sort(scores.numpy(), axis=1)[:, ::-1]
    expected = np.maximum(1 + ranked[:, K] - scores.numpy()[np.arange(20), labels.numpy()], 0)
    ours = noised_topk_hinge(scores, labels, K, 0.0, 5, reduction="none")
    close(ours, torch.from_numpy(expected.copy()))
    # pytopk with eps = 0 ignores its noise: the same values and gradients
    ref, ref_grad = loss_and_grad(lambda s: bal_noised_topk_loss(s, labels, K, 0.0, _noised_topk, noise), scores)
    value, grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, K, 0.0, 5), scores)
    close(value, ref)
    close(grad, ref_grad)


def test_operator_matches_brute_force_and_gradient_sums_to_one():
    B, L, S, k = 8, 25, 6, 3
    scores, _, noise = make_batch(B, L, S, seed=11)
    s = scores.clone().requires_grad_(True)
    value = perturbed_topk(s, k, 0.8, S, noise=noise)
    upstream = torch.rand(B) + 0.5
    (value * upstream).sum().backward()
    perturbed = (scores[:, :, None] + 0.8 * noise).numpy()  # the same fp32 arithmetic
    order = np.argsort(-perturbed, axis=1, kind="stable")[:, k - 1, :]  # (B, S): index of the k-th largest
    expected_value = np.take_along_axis(perturbed, order[:, None, :], 1)[:, 0, :].mean(1)
    expected_grad = np.zeros((B, L))
    for i in range(B):
        for b in range(S):
            expected_grad[i, order[i, b]] += 1.0 / S
    close(value.detach(), torch.from_numpy(expected_value))
    close(s.grad, torch.from_numpy(expected_grad).float() * upstream[:, None])
    s.grad = None
    perturbed_topk(s, k, 0.8, S).sum().backward()  # noise drawn inside
    close(s.grad.sum(1), torch.ones(B))
    close(PerturbedTopK(k, 0.8, S)(scores, noise=noise), value.detach())
    close(perturbed_topk(scores, k, 0.8, S, noise=noise), _noised_topk(scores, noise, k, 0.8, -1, -1))


def test_gradcheck_finite_differences():
    scores, labels, noise = make_batch(5, 9, 3, seed=5, dtype=torch.float64)
    noise = noise.double()
    s = scores.clone().requires_grad_(True)
    margins = torch.linspace(0.1, 0.5, 9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: noised_topk_hinge(x, labels, 2, 0.5, 3, noise=noise, reduction="none"), (s,))
    assert torch.autograd.gradcheck(
        lambda x: noised_topk_hinge(x, labels, 2, 0.5, 3, noise=noise, margins=margins, scale=3.0, reduction="none"), (s,)
    )
    assert torch.autograd.gradcheck(lambda x: perturbed_topk(x, 4, 0.5, 3, noise=noise), (s,))


@pytest.mark.parametrize("L,S", [(1000, 5), (13, 5), (7, 3)])
def test_chunked_equals_unchunked(L, S):
    B = 45
    scores, labels, noise = make_batch(B, L, S, seed=L)
    for chunk in (1, 16 * L * S, 3 * L * S):
        kwargs = dict(noise=noise, reduction="none")
        whole, whole_grad = loss_and_grad(lambda s: noised_topk_hinge(s, labels, 2, 1.0, S, **kwargs).sum(), scores)
        part, part_grad = loss_and_grad(
            lambda s: noised_topk_hinge(s, labels, 2, 1.0, S, chunk_elements=chunk, **kwargs).sum(), scores
        )
        close(part, whole, rtol=0, atol=0)
        close(part_grad, whole_grad, rtol=0, atol=0)
    # Noise drawn in 16-row-aligned chunks is the one-shot torch.randn(B, L, S) draw (CPU generator).
    g = torch.Generator().manual_seed(7)
    one_shot = noised_topk_hinge(scores, labels, 2, 1.0, S, noise=torch.randn(B, L, S, generator=g), reduction="none")
    g.manual_seed(7)
    chunked = noised_topk_hinge(scores, labels, 2, 1.0, S, generator=g, chunk_elements=16 * L * S, reduction="none",
                                noise_mode="dense")
    close(chunked, one_shot, rtol=0, atol=0)


def test_modules_reproduce_pytopk_modules_from_the_same_seed():
    scores, labels, _ = make_batch(40, 60, 5, seed=8)
    counts = zipf_counts(60)
    pairs = [
        # From a seed (not a given noise tensor) only the dense path draws pytopk's numbers.
        (pytopk.BalNoisedTopK(k=2, epsilon=0.5), BalancedTopKHinge(2, 0.5, chunk_elements=16 * 60 * 5, noise_mode="dense")),
        (
            pytopk.ImbalNoisedTopK(k=2, epsilon=0.05, max_m=0.2, cls_num_list=counts),
            ImbalancedTopKHinge(2, 0.05, max_m=0.2, class_counts=counts, chunk_elements=16 * 60 * 5, noise_mode="dense"),
        ),
    ]
    for ref_module, module in pairs:
        torch.manual_seed(123)
        ref, ref_grad = loss_and_grad(lambda s: ref_module(s, labels), scores)
        torch.manual_seed(123)  # module without a generator: torch's default generator, like pytopk
        ours, grad = loss_and_grad(lambda s: module(s, labels), scores)
        close(ours, ref)
        close(grad, ref_grad, atol=1e-5)  # imbalanced: scale 50 multiplies the 1/B gradient
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = BalancedTopKHinge(2, 0.5, generator=g1)(scores, labels)
    b = BalancedTopKHinge(2, 0.5, generator=g2, chunk_elements=16 * 60 * 5)(scores, labels)
    close(a, b, rtol=0, atol=0)


def test_class_margins_by_hand():
    close(class_margins([1, 16, 81], 0.6), torch.tensor([0.6, 0.3, 0.2]))
    close(class_margins([5, 5], 0.2), torch.tensor([0.2, 0.2]))


def test_per_example_losses_feed_any_aggregate():
    scores, labels, noise = make_batch(50, 40, 5, seed=9)
    losses = noised_topk_hinge(scores, labels, 3, 1.0, 5, noise=noise, reduction="none")
    close(build_aggregate("average")(losses), noised_topk_hinge(scores, labels, 3, 1.0, 5, noise=noise))
    close(build_aggregate("atk", k=10)(losses), torch.sort(losses, descending=True).values[:10].mean())
    lam = torch.tensor(0.5)
    close(build_aggregate("stk", k=10, lam_init=0.5)(losses), st_k(losses, lam, 10))
    close(average(losses), losses.mean())
    close(average_top_k(losses, 50), losses.mean())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(k=10), "k \\(the top-K of the loss\\) must be <= 9"),
        (dict(k=12), "must be <= 9"),
        (dict(k=0), "must be an integer >= 1"),
        (dict(epsilon=-0.1), "epsilon must be a finite number >= 0, got epsilon=-0.1"),
        (dict(epsilon=float("nan")), "epsilon"),
        (dict(n_samples=0), "n_samples must be an integer >= 1, got n_samples=0"),
        (dict(labels=torch.tensor([0, 10, 1])), "labels must lie in \\[0, C\\) = \\[0, 10\\), got a label 10"),
        (dict(labels=torch.tensor([0, -1, 1])), "got a label -1"),
        (dict(labels=torch.tensor([0, 1])), "labels must have shape"),
        (dict(noise=torch.zeros(3, 10, 4)), "noise must have shape"),
        (dict(reduction="avg"), "reduction must be one of"),
        (dict(scale=0.0), "scale must be a finite number > 0"),
        (dict(margins=torch.zeros(9)), "margins must be a tensor of shape"),
        (dict(chunk_elements=0), "chunk_elements must be an integer >= 1"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(scores=torch.randn(3, 10), labels=torch.tensor([0, 9, 1]), k=2, epsilon=1.0, n_samples=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        noised_topk_hinge(
            args.pop("scores"), args.pop("labels"), args.pop("k"), args.pop("epsilon"), args.pop("n_samples"), **args
        )


def test_bad_class_counts_and_operator_k():
    with pytest.raises(ValueError, match=r"class_counts\[2\]=0.0"):
        class_margins([3, 4, 0, 5], 0.2)
    with pytest.raises(ValueError, match="max_m must be a finite number >= 0"):
        class_margins([3, 4], -1.0)
    with pytest.raises(ValueError, match="class_counts"):
        ImbalancedTopKHinge(2, 0.1, max_m=0.2, class_counts=[4, -1, 3])
    with pytest.raises(ValueError, match="k must be <= 10"):
        perturbed_topk(torch.randn(2, 10), 11)
    with pytest.raises(ValueError, match="scores must be a 2-D floating tensor"):
        perturbed_topk(torch.randn(10), 1)


@pytest.mark.parametrize("mode", ["dense", "truncated", "auto"])
def test_rows_equal_the_indexed_rows_values_and_gradients(mode):
    # The criterion's form: the loss of scores[rows] with the gradient written into the full scores.
    g = torch.Generator().manual_seed(21)
    B, L, S, K = 12, 300, 4, 3
    scores = torch.randn(B, L, generator=g) * 4
    rows = torch.tensor([0, 2, 3, 7, 7, 11])  # a repeated row adds up, as autograd's index does
    labels = torch.randint(0, L, (rows.numel(),), generator=g)
    noise = torch.randn(rows.numel(), L, S, generator=g)
    counts = torch.ones(L) + torch.arange(L)
    for margins, scale in [(None, 1.0), (class_margins(counts, 0.3), 2.0)]:
        kw = dict(noise=noise, noise_mode=mode, reduction="none", margins=margins, scale=scale)
        per_row = {}
        ref, ref_grad = loss_and_grad(lambda s: per_row.setdefault("ref", noised_topk_hinge(s[rows], labels, K, 0.5, S, **kw))
                                      .sum(), scores)
        out, grad = loss_and_grad(lambda s: per_row.setdefault("out", noised_topk_hinge(s, labels, K, 0.5, S, rows=rows, **kw))
                                  .sum(), scores)
        assert torch.equal(per_row["out"].detach(), per_row["ref"].detach())
        assert torch.equal(out, ref)
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-7)
        assert grad[[1, 4, 5, 6, 8, 9, 10]].abs().sum() == 0
    module = BalancedTopKHinge(K, 0.5, S, reduction="none", noise_mode=mode)
    assert torch.equal(module(scores, labels, noise=noise, rows=rows),
                       noised_topk_hinge(scores[rows], labels, K, 0.5, S, noise=noise, noise_mode=mode, reduction="none"))


@pytest.mark.parametrize("rows,match", [
    (torch.tensor([0, 12]), r"rows must lie in \[0, B\) = \[0, 12\), got a row 12"),
    (torch.tensor([-1, 2]), r"got a row -1"),
    (torch.tensor([[0, 1]]), "rows must be a 1-D int64/int32 torch.Tensor"),
    (torch.tensor([0.0, 1.0]), "rows must be a 1-D int64/int32 torch.Tensor"),
    (torch.tensor([], dtype=torch.long), "rows is empty"),
])
def test_bad_rows(rows, match):
    scores = torch.randn(12, 30)
    with pytest.raises(ValueError, match=match):
        noised_topk_hinge(scores, torch.zeros(max(1, rows.numel()), dtype=torch.long), 2, rows=rows)
