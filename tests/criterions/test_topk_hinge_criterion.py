"""topk_hinge / imbalanced_topk_hinge criteria on hand-built samples, against independent computations.

References: pytopk 0.1.0 on the non-padding rows with the same noise, fairseq's
label_smoothed_nll_loss, the core's st_k, and a sort for the top-1 / top-K hits.
"""

import numpy as np
import pytest
import torch

fairseq = pytest.importorskip("fairseq")
pytopk = pytest.importorskip("pytopk")

import stk_nmt  # noqa: E402,F401  (registers the criteria: fairseq is imported)
from fairseq.criterions import CRITERION_REGISTRY  # noqa: E402
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss  # noqa: E402
from fairseq.data import Dictionary  # noqa: E402
from fairseq.logging import metrics  # noqa: E402
from pytopk.functional import bal_noised_topk_loss, imbal_noised_topk_loss  # noqa: E402
from pytopk.noised_topk import _noised_topk  # noqa: E402

from stk_nmt.core import st_k  # noqa: E402
from fairseq_fakes import LogitModel  # noqa: E402
from stk_nmt.criterions.topk_hinge import (  # noqa: E402
    ImbalancedTopKHingeConfig,
    ImbalancedTopKHingeCriterion,
    TopKHingeConfig,
    TopKHingeCriterion,
    dictionary_class_counts,
)

B, T, S = 3, 6, 5
PAD = 1


class Task:
    """A target dictionary with Zipf-like counts, padded to a multiple of 8 like fairseq-preprocess."""

    def __init__(self, n_words=21):
        self.target_dictionary = Dictionary()
        for i in range(n_words):
            self.target_dictionary.add_symbol(f"w{i}", n=int(1000 / (i + 1) ** 1.2) + 1)
        self.target_dictionary.pad_to_multiple_(8)


def make_sample(V, seed=0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(4, 25, (B, T), generator=gen)
    target[0, 4:] = PAD
    target[2, 5:] = PAD
    sample = {"net_input": {}, "target": target, "ntokens": int(target.ne(PAD).sum())}
    return sample, torch.randn(B, T, V, generator=gen) * 2


def make_cfg(cls=TopKHingeConfig, **kw):
    kw.setdefault("sentence_avg", False)
    kw.setdefault("label_smoothing", 0.1)
    kw.setdefault("stk_aggregate", "average")
    kw.setdefault("topk_samples", S)
    return cls(**kw)


def reference(logits, target, hinge_fn, mix):
    """Per-token losses: pytopk hinge on the non-padding rows (noise drawn after the same seed) + LS-CE."""
    V = logits.shape[-1]
    flat, tgt = logits.reshape(-1, V), target.reshape(-1)
    mask = tgt.ne(PAD)
    lprobs = torch.log_softmax(flat, -1)
    ce, nll = label_smoothed_nll_loss(lprobs, tgt, 0.1, ignore_index=PAD, reduce=False)
    noise = torch.randn(int(mask.sum()), V, S)
    rows = flat[mask]
    # pytopk returns the batch mean; one call per row gives the per-token losses.
    hinge = torch.stack([hinge_fn(rows[i : i + 1], tgt[mask][i : i + 1], noise[i : i + 1]) for i in range(rows.shape[0])])
    return (1 - mix) * hinge + mix * ce.view(-1)[mask], nll.view(-1)[mask]


def test_registered():
    assert CRITERION_REGISTRY["topk_hinge"] is TopKHingeCriterion
    assert CRITERION_REGISTRY["imbalanced_topk_hinge"] is ImbalancedTopKHingeCriterion


def criterion_and_reference(crit, logits, sample, seed, loss_fn, mix):
    """The criterion's loss and gradient against `reference` with pytopk's loss, both drawing their
    noise from the same seed; returns the criterion's output, its model and the reference's."""
    model = LogitModel(logits)
    torch.manual_seed(seed)
    out = crit(model, sample)
    (out[0] / out[1]).backward()
    ref_logits = logits.clone().requires_grad_(True)
    torch.manual_seed(seed)
    tokens, nll = reference(ref_logits, sample["target"], loss_fn, mix)
    tokens.mean().backward()
    torch.testing.assert_close(out[0], tokens.sum(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.logits.grad, ref_logits.grad, rtol=1e-5, atol=1e-7)
    return out, model, (tokens, nll)


@pytest.mark.parametrize("mix", [0.0, 0.3])
def test_balanced_matches_pytopk_and_label_smoothed_ce(mix):
    task = Task()
    V = len(task.target_dictionary)
    sample, logits = make_sample(V)
    crit = TopKHingeCriterion(make_cfg(topk_k=3, topk_eps=0.5, topk_ce_mix=mix), task)
    (loss, sample_size, log), model, (tokens, nll) = criterion_and_reference(
        crit, logits, sample, 42, lambda s, y, z: bal_noised_topk_loss(s, y, 3, 0.5, _noised_topk, z), mix)
    assert sample_size == sample["ntokens"] == tokens.numel()
    torch.testing.assert_close(log["nll_loss"], nll.sum().detach())
    assert torch.count_nonzero(model.logits.grad[sample["target"].eq(PAD)]) == 0


def test_imbalanced_margins_from_dictionary_counts():
    task = Task()
    d = task.target_dictionary
    V = len(d)
    counts, replaced = dictionary_class_counts(d)
    regular = torch.tensor(d.count[d.nspecial :], dtype=torch.float64)
    n_zero = int((regular == 0).sum())
    assert n_zero > 0  # the madeupword padding
    assert replaced == d.nspecial + n_zero
    assert torch.all(counts[: d.nspecial] == regular.max())  # eos & co: the smallest margin
    assert torch.all(counts[d.nspecial :][regular == 0] == regular[regular > 0].min())
    sample, logits = make_sample(V, seed=1)
    crit = ImbalancedTopKHingeCriterion(
        make_cfg(ImbalancedTopKHingeConfig, topk_k=2, topk_eps=0.05, topk_max_m=0.4, topk_scale=3.0, topk_ce_mix=0.5,
                 topk_hinge_noise="dense"),  # pytopk's draws from the seed: the dense path
        task,
    )
    m_list = pytopk.ImbalNoisedTopK(k=2, epsilon=0.05, max_m=0.4, cls_num_list=counts.numpy()).m_list
    # hand check: the rarest word's margin is max_m, a word 16x more frequent gets half of it
    rare, frequent = counts[d.nspecial :].argmin() + d.nspecial, counts.argmax()
    assert float(m_list[rare]) == pytest.approx(0.4)
    assert float(m_list[frequent]) == pytest.approx(0.4 * (float(counts[rare]) / float(counts[frequent])) ** 0.25)
    torch.testing.assert_close(crit.hinge.margins, m_list)
    criterion_and_reference(
        crit, logits, sample, 7, lambda s, y, z: imbal_noised_topk_loss(s, y, 2, m_list, 0.05, _noised_topk, z, 3.0), 0.5)


def test_stk_aggregation_is_one_flag():
    task = Task()
    V = len(task.target_dictionary)
    sample, logits = make_sample(V, seed=2)
    crit = TopKHingeCriterion(
        make_cfg(topk_k=2, topk_ce_mix=0.5, stk_aggregate="stk", stk_k=5, stk_lam_init=0.8, stk_lam_optimizer="fairseq"), task
    )
    torch.manual_seed(3)
    loss, _, log = crit(LogitModel(logits), sample)
    torch.manual_seed(3)
    tokens, _ = reference(logits, sample["target"], lambda s, y, z: bal_noised_topk_loss(s, y, 2, 1.0, _noised_topk, z), 0.5)
    expected = st_k(tokens, torch.tensor(0.8), 5, fused=False) * tokens.numel()
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    assert log["agg_k"] == 5 and float(log["lam"]) == pytest.approx(0.8)


def test_top1_and_topk_accuracy_logged():
    task = Task()
    V = len(task.target_dictionary)
    sample, logits = make_sample(V, seed=4)
    logs = []
    for seed in (4, 5):
        sample, logits = make_sample(V, seed=seed)
        crit = TopKHingeCriterion(make_cfg(topk_k=4), task)
        _, _, log = crit(LogitModel(logits), sample)
        ranks = np.argsort(-logits.numpy(), axis=-1, kind="stable")
        tgt = sample["target"].numpy()
        mask = tgt != PAD
        assert log["n_correct"] == int(((ranks[..., 0] == tgt) & mask).sum())
        assert log["n_correct_topk"] == int(((ranks[..., :4] == tgt[..., None]).any(-1) & mask).sum())
        assert log["total"] == int(mask.sum())
        logs.append(log)
    with metrics.aggregate() as agg:
        TopKHingeCriterion.reduce_metrics(logs)
    values = {name: float(value) for name, value in agg.get_smoothed_values().items()}  # tensors until printed
    total = sum(int(log["total"]) for log in logs)
    assert values["accuracy"] == pytest.approx(round(100 * sum(int(log["n_correct"]) for log in logs) / total, 3))
    assert values["topk_accuracy"] == pytest.approx(
        round(100 * sum(int(log["n_correct_topk"]) for log in logs) / total, 3))
    assert values["topk_accuracy"] >= values["accuracy"] > 0


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(topk_k=32), r"--topk-k must be an integer in \[1, 31\].*got --topk-k 32"),
        (dict(topk_k=0), "--topk-k must be an integer"),
        (dict(topk_eps=-1.0), r"^--topk-eps must be a finite number >= 0, got --topk-eps -1.0"),
        (dict(topk_samples=0), "^--topk-samples must be an integer >= 1, got --topk-samples 0"),
        (dict(topk_ce_mix=1.5), "--topk-ce-mix must be in"),
    ],
)
def test_bad_flags(kw, match):
    with pytest.raises(ValueError, match=match):
        TopKHingeCriterion(make_cfg(**kw), Task())


@pytest.mark.parametrize("flag,field,value", [
    ("--topk-eps", "topk_eps", float("inf")),
    ("--topk-samples", "topk_samples", -2),
    ("--topk-chunk-elements", "topk_chunk_elements", 0),
    ("--topk-hinge-noise", "topk_hinge_noise", "sparse"),
    ("--topk-hinge-tolerance", "topk_hinge_tolerance", 1.5),
    ("--topk-max-m", "topk_max_m", -0.5),
    ("--topk-scale", "topk_scale", -3.0),
])
def test_every_hinge_flag_error_names_the_flag_and_the_value_as_typed(flag, field, value):
    """The core's own checks name the flags (core/arguments.py); no message is rewritten."""
    with pytest.raises(ValueError) as error:
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, **{field: value}), Task())
    message = str(error.value)
    assert message.startswith(f"{flag} must ") and message.endswith(f", got {flag} {value}"), message


def test_bad_imbalanced_flags_and_counts():
    with pytest.raises(ValueError, match="--topk-max-m must be a finite number >= 0"):
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, topk_max_m=-0.1), Task())
    with pytest.raises(ValueError, match="--topk-scale must be a finite number > 0"):
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, topk_scale=0.0), Task())
    empty = Task(n_words=0)
    for i in range(10):
        empty.target_dictionary.add_symbol(f"z{i}", n=0)
    with pytest.raises(ValueError, match="no symbol with a count > 0"):
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, topk_k=2), empty)


def test_imbalanced_scale_other_than_one_warns_about_plain_logits(caplog):
    """The flag's default is the reference's scale (50, for a cosine last layer); the decoder's logits
    are plain, so the criterion says to pass --topk-scale 1, and is silent given 1."""
    import logging

    with caplog.at_level(logging.WARNING, logger="stk_nmt.criterions.topk_hinge"):
        default = ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig), Task())
        assert default.hinge.scale == 50.0
        assert [r.getMessage() for r in caplog.records if "--topk-scale 1" in r.getMessage()], caplog.text
        caplog.clear()
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, topk_scale=1.0), Task())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_model_output_must_be_vocabulary_logits():
    task = Task()
    sample, logits = make_sample(len(task.target_dictionary))
    crit = TopKHingeCriterion(make_cfg(), task)
    with pytest.raises(ValueError, match="needs the model's logits over the target vocabulary"):
        crit(LogitModel(logits[..., :-1]), sample)


@pytest.mark.parametrize("mode", ["dense", "truncated", "lazy", "auto"])
def test_noise_flag_reaches_the_hinge(mode):
    """--topk-hinge-noise / --topk-hinge-tolerance set the core's noise_mode and tolerance; on peaked
    logits (few candidates), "dense" still reproduces pytopk from the seed, and the truncated modes
    give the hinge of the core's truncated operator on the same rows, with its gradient only on the
    candidates (within the margin of each token's (K+1)-th logit) and the reference token (lazy and
    auto: with probability at least 1 - tolerance, as the classes outside that margin cannot reach the
    top K + 1 of a draw otherwise)."""
    from stk_nmt.core import noised_topk_hinge
    from stk_nmt.core.losses.topk import truncation_margin

    task = Task()
    V = len(task.target_dictionary)
    sample, logits = make_sample(V)
    logits = logits * 4  # spread: the truncated path does not fall back
    crit = TopKHingeCriterion(make_cfg(topk_k=2, topk_eps=0.2, topk_ce_mix=0.0, topk_hinge_noise=mode,
                                       topk_hinge_tolerance=1e-4), task)
    assert (crit.hinge.noise_mode, crit.hinge.tolerance) == (mode, 1e-4)
    model = LogitModel(logits)
    torch.manual_seed(3)
    loss, _, _ = crit(model, sample)
    loss.backward()
    mask = sample["target"].reshape(-1).ne(PAD)
    rows, tgt = logits.reshape(-1, V)[mask], sample["target"].reshape(-1)[mask]
    torch.manual_seed(3)
    if mode == "dense":
        noise = torch.randn(rows.shape[0], V, S)
        ref = torch.stack([bal_noised_topk_loss(rows[i : i + 1], tgt[i : i + 1], 2, 0.2, _noised_topk, noise[i : i + 1])
                           for i in range(rows.shape[0])])
    else:
        ref = noised_topk_hinge(rows, tgt, 2, 0.2, S, reduction="none", noise_mode=mode, tolerance=1e-4)
        grad = model.logits.grad.reshape(-1, V)[mask]
        third = torch.topk(rows, 3, dim=1).values[:, 2:]
        near = rows >= third - truncation_margin(V, 3, S, 0.2, 1e-4)
        assert (near.sum(1) < V // 4).all()
        assert torch.count_nonzero(grad[~near & ~torch.nn.functional.one_hot(tgt, V).bool()]) == 0
    torch.testing.assert_close(loss, ref.sum(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["dense", "truncated", "lazy", "auto"])
@pytest.mark.parametrize("cls", [TopKHingeCriterion, ImbalancedTopKHingeCriterion])
def test_an_overflowed_batch_gives_a_nan_loss_not_an_error(mode, cls):
    """fp16 overflow makes NaN logits; fairseq's optimizer then skips the update, so the criterion
    must return (a NaN loss) rather than raise. 2,100 words: "auto" takes its lazy path."""
    task = Task(n_words=2100)
    V = len(task.target_dictionary)
    sample, logits = make_sample(V)
    cfg_cls = TopKHingeConfig if cls is TopKHingeCriterion else ImbalancedTopKHingeConfig
    crit = cls(make_cfg(cfg_cls, topk_k=10, topk_eps=1.0, topk_hinge_noise=mode), task)
    for bad in (slice(0, 1), slice(0, B)):  # one sentence, every sentence
        broken = (logits * 4).clone()
        broken[bad] = float("nan")
        loss, _, _ = crit(LogitModel(broken), sample)
        assert bool(loss.isnan())


@pytest.mark.parametrize("mix", [0.0, 0.5])
@pytest.mark.parametrize("cls", [TopKHingeCriterion, ImbalancedTopKHingeCriterion])
def test_a_batch_of_padding_only_gives_a_zero_loss(mix, cls):
    """As the stk criteria do: no token, nothing to learn, loss 0 (and a backward that runs), not an error."""
    task = Task()
    V = len(task.target_dictionary)
    sample, logits = make_sample(V)
    sample = {**sample, "target": torch.full_like(sample["target"], PAD), "ntokens": 0}
    cfg_cls = TopKHingeConfig if cls is TopKHingeCriterion else ImbalancedTopKHingeConfig
    crit = cls(make_cfg(cfg_cls, topk_k=2, topk_ce_mix=mix), task)
    model = LogitModel(logits)
    loss, sample_size, log = crit(model, sample)
    loss.backward()
    assert float(loss) == 0.0 and sample_size == 0 and log["ntokens"] == 0
    assert torch.count_nonzero(model.logits.grad) == 0


def test_bad_noise_flags():
    with pytest.raises(ValueError, match="--topk-hinge-tolerance must be a number in \\(0, 1\\), got --topk-hinge-tolerance 0.0"):
        TopKHingeCriterion(make_cfg(topk_hinge_tolerance=0.0), Task())
    with pytest.raises(ValueError, match="--topk-hinge-noise must be one of .*got --topk-hinge-noise sparse"):
        ImbalancedTopKHingeCriterion(make_cfg(ImbalancedTopKHingeConfig, topk_hinge_noise="sparse"), Task())


def test_accuracy_at_a_wide_vocabulary_with_ties():
    # >= 4096 entries: the top-K hit goes through the core's blocked k-th largest selection.
    task = Task(n_words=4200)
    V = len(task.target_dictionary)
    sample, logits = make_sample(V, seed=6)
    tgt = sample["target"]
    # Ties with the reference logit: at rank K (counts as a hit) and for the top-1.
    logits[0, 0, :3] = logits[0, 0].max() + 1
    logits[0, 0, tgt[0, 0]] = logits[0, 0, 0]
    logits[1, 1] = 0.5  # every logit equal: a hit for both
    crit = TopKHingeCriterion(make_cfg(topk_k=3, topk_eps=0.01), task)
    log = crit.extra_logging(LogitModel(logits), (logits, None), sample)
    flat, t = logits.reshape(-1, V), tgt.reshape(-1)
    beaten_by = (flat > flat.gather(1, t[:, None])).sum(dim=1)  # brute force: logits strictly above
    mask = t != PAD
    assert log["n_correct"] == int(((beaten_by == 0) & mask).sum())
    assert log["n_correct_topk"] == int(((beaten_by < 3) & mask).sum())
    assert log["n_correct"] >= 2 and log["total"] == int(mask.sum())
