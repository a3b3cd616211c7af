"""The stk criteria on batches that used to kill or silently spoil a run: non-finite token losses,
batches smaller than --stk-k, lam stuck outside the losses, models whose output is not
batch-first; and the host-device read-backs of one training step against
label_smoothed_cross_entropy. References: fairseq's own criterion and per-token function, the
core's unfused lambda_form, hand-derived values."""

import logging

import pytest
import torch

fairseq = pytest.importorskip("fairseq")
import stk_nmt  # noqa: E402,F401
from fairseq.criterions.label_smoothed_cross_entropy import (  # noqa: E402
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
    label_smoothed_nll_loss,
)
from fairseq.logging import metrics  # noqa: E402

from stk_nmt.core import lambda_form  # noqa: E402
from stk_nmt.criterions import STkCriterion, STkLabelSmoothedCrossEntropyCriterion  # noqa: E402
from stk_nmt.criterions import aggregate_config, lam_update  # noqa: E402
from fairseq_fakes import LogitModel  # noqa: E402
from test_criterion_stk import V, Task, assert_same_as_label_smoothed, make_cfg, make_sample  # noqa: E402


def reference_token_losses(logits, target, pad=1, eps=0.1):
    lprobs = torch.log_softmax(logits.double(), -1).view(-1, V)
    tok, _ = label_smoothed_nll_loss(lprobs, target.view(-1), eps, ignore_index=pad, reduce=False)
    return tok.view(-1)[target.view(-1).ne(pad)]


def step(model):
    torch.optim.SGD(model.parameters(), lr=0.0).step()  # any optimizer step applies lam's update


# ---- non-finite token losses --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_token_loss_reaches_fairseq_and_never_touches_lam(bad):
    sample, logits = make_sample(seed=1)
    crit = STkCriterion(make_cfg(stk_k_ratio=0.5, stk_lam_lr=0.5), Task())
    model = LogitModel(logits)
    crit.train()
    loss, _, _ = crit(model, sample)  # a good first batch initialises lam
    loss.backward()
    step(model)
    lam = float(crit.lam_value)
    assert torch.isfinite(crit.lam_value).all()
    bad_logits = logits.clone()
    bad_logits[1, 2, sample["target"][1, 2]] = -bad if bad == float("inf") else bad  # that token's loss: inf/NaN
    bad_model = LogitModel(bad_logits)
    bad_model.zero_grad()
    crit.aggregate.lam.grad = None  # fairseq's zero_grad
    loss, _, log = crit(bad_model, sample)  # no ValueError: like label_smoothed_cross_entropy
    assert not torch.isfinite(loss)  # what fairseq's fp16 loss scaler looks for
    loss.backward()
    step(bad_model)  # even if a step happened, this batch contributes nothing to lam
    assert float(crit.lam_value) == lam


def test_non_finite_first_batch_leaves_lam_uninitialised():
    sample, logits = make_sample(seed=1)
    logits[:, :, :] = float("nan")
    crit = STkCriterion(make_cfg(stk_k_ratio=0.5), Task())
    crit.train()
    loss, _, _ = crit(LogitModel(logits), sample)
    assert torch.isnan(loss)
    assert not bool(crit.aggregate.lam_initialized) and float(crit.lam_value) == 0.0


def test_core_direct_api_keeps_its_error():
    from stk_nmt.core import STk

    with pytest.raises(ValueError, match="non-finite"):
        STk(k=1, lam_init=0.0)(torch.tensor([1.0, float("inf")]))


# ---- k larger than the batch --------------------------------------------------------------------
def test_count_k_above_the_batch_uses_k_equal_n_and_is_counted():
    sample, logits = make_sample(seed=2)
    n = sample["ntokens"]
    crit = STkCriterion(make_cfg(stk_k=n + 3, stk_lam_init=0.2, stk_lam_optimizer="fairseq"), Task())
    loss, _, log = crit(LogitModel(logits), sample)  # used to raise "k must be <= ... n"
    valid = reference_token_losses(logits, sample["target"])
    ref = lambda_form(valid, torch.tensor(0.2, dtype=torch.float64), n, fused=False) * n
    torch.testing.assert_close(loss.double(), ref, rtol=1e-6, atol=1e-6)
    assert int(log["agg_k"]) == n and int(log["k_clipped"]) == 1
    # With k = n and lam below every loss by many delta, SReLU(x) = x - delta/2 + O(delta^2/x), so
    # ST_k = average - delta/2 (the same gradients as the average, up to O(delta^2/gap)).
    assert float(valid.min()) > 0.2 + 100 * 0.01
    assert float(loss) / n == pytest.approx(float(valid.mean()) - 0.01 / 2, abs=2e-5)
    with metrics.aggregate() as agg:
        STkCriterion.reduce_metrics([log, log, {**log, "k_clipped": torch.tensor(0)}])
    assert agg.get_smoothed_values()["k_clipped"] == 2


def test_core_modules_clip_k_only_when_asked():
    from stk_nmt.core import AverageTopK, STk

    losses = torch.tensor([3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="k must be <="):
        AverageTopK(k=5)(losses)
    atk = AverageTopK(k=5, clip_k=True)
    assert atk(losses).item() == pytest.approx(2.0) and atk.k_clipped == 1 and atk.last_k == 3
    stk = STk(k=5, clip_k=True, lam_init=0.0, delta=0.01)
    stk(losses)
    assert stk.k_clipped == 1 and stk.last_k == 3


# ---- lam stuck outside the losses -----------------------------------------------------------------
@pytest.mark.parametrize("lam_init,lr,words", [(100.0, 1e-6, "above every token loss"),
                                               (-50.0, 1e-6, "degenerated into the plain average")])
def test_warning_when_lam_sits_outside_the_losses(monkeypatch, caplog, lam_init, lr, words):
    monkeypatch.setattr(lam_update, "LAM_RANGE_CHECK_EVERY", 3)
    monkeypatch.setattr(lam_update, "LAM_RANGE_WARN_AFTER", 6)
    monkeypatch.setattr(lam_update, "LAM_RANGE_WARN_EVERY", 100)
    sample, logits = make_sample(seed=4)
    model = LogitModel(logits)
    crit = STkCriterion(make_cfg(stk_lam_init=lam_init, stk_lam_lr=lr), Task())
    crit.train()
    with caplog.at_level(logging.WARNING, logger=lam_update.__name__):
        for i in range(5):
            crit(model, sample)
        assert not caplog.records  # 5 batches: not yet "many"
        for i in range(20):
            crit(model, sample)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # rate-limited
    assert words in warnings[0] and "--stk-lam-init" in warnings[0] and "--stk-lam-lr" in warnings[0]


@pytest.mark.parametrize("flags,aggregate,named", [
    (dict(stk_k_ratio=0.3), "maximum", ["--stk-k-ratio 0.3"]),
    (dict(stk_k=4, stk_delta=0.5), "average", ["--stk-k 4", "--stk-delta 0.5"]),
    (dict(stk_delta=0.5, stk_smoother="relu"), "atk", ["--stk-delta 0.5", "--stk-smoother relu"]),
    (dict(stk_lam_init=2.0, stk_lam_lr=0.1), "atk", ["--stk-lam-init 2.0", "--stk-lam-lr 0.1"]),
    (dict(stk_delta=0.5, stk_smoother="softplus"), "stk", ["--stk-delta 0.5"]),
])
def test_flags_the_aggregate_ignores_are_warned_about(caplog, flags, aggregate, named):
    with caplog.at_level(logging.WARNING, logger=aggregate_config.__name__):
        STkCriterion(make_cfg(stk_aggregate=aggregate, **flags), Task())
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"--stk-aggregate {aggregate}" in warnings[0] and all(flag in warnings[0] for flag in named), warnings[0]


@pytest.mark.parametrize("flags,aggregate", [
    (dict(), "maximum"), (dict(), "average"), (dict(stk_k_ratio=0.3), "atk"),
    (dict(stk_k=4, stk_delta=0.5, stk_lam_init=1.0), "stk"), (dict(stk_k=4, stk_lam_init=1.0), "matk"),
])
def test_flags_the_aggregate_uses_give_no_warning(caplog, flags, aggregate):
    with caplog.at_level(logging.WARNING, logger=aggregate_config.__name__):
        STkCriterion(make_cfg(stk_aggregate=aggregate, **flags), Task())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_no_warning_when_lam_is_inside_the_losses(monkeypatch, caplog):
    monkeypatch.setattr(lam_update, "LAM_RANGE_CHECK_EVERY", 1)
    monkeypatch.setattr(lam_update, "LAM_RANGE_WARN_AFTER", 2)
    sample, logits = make_sample(seed=4)
    crit = STkCriterion(make_cfg(), Task())
    crit.train()
    with caplog.at_level(logging.WARNING, logger=lam_update.__name__):
        for _ in range(10):
            crit(LogitModel(logits), sample)
    assert not caplog.records


# ---- fairseq's own code, not a copy ---------------------------------------------------------------
def test_config_is_fairseqs_own():
    from stk_nmt.criterions.label_smoothed import STkLabelSmoothedCrossEntropyConfig

    # The same flags, names and defaults by construction, not by a copy kept in step by hand.
    assert issubclass(STkLabelSmoothedCrossEntropyConfig, LabelSmoothedCrossEntropyCriterionConfig)


class TimeFirstModel(LogitModel):
    """A model whose output and targets are time-first, (T, B, V) and (T, B), flagged batch_first=False."""

    def get_normalized_probs(self, net_output, log_probs=True):
        out = torch.log_softmax(net_output[0].float(), dim=-1).transpose(0, 1)
        out.batch_first = False
        return out

    def get_targets(self, sample, net_output):
        return sample["target"].t()


def get_lprobs_and_target_with_batch_first_branch(self, model, net_output, sample):
    # fairseq's later get_lprobs_and_target (with the batch_first branch), verbatim in substance.
    lprobs = model.get_normalized_probs(net_output, log_probs=True)
    target = model.get_targets(sample, net_output)
    if self.ignore_prefix_size > 0:
        if getattr(lprobs, "batch_first", False):
            lprobs = lprobs[:, self.ignore_prefix_size :, :].contiguous()
            target = target[:, self.ignore_prefix_size :].contiguous()
        else:
            lprobs = lprobs[self.ignore_prefix_size :, :, :].contiguous()
            target = target[self.ignore_prefix_size :, :].contiguous()
    return lprobs.view(-1, lprobs.size(-1)), target.view(-1)


@pytest.mark.parametrize("fairseq_version", ["installed", "with_batch_first_branch"])
def test_average_reproduces_label_smoothed_cross_entropy_on_a_time_first_model(monkeypatch, fairseq_version):
    if fairseq_version != "installed":
        monkeypatch.setattr(LabelSmoothedCrossEntropyCriterion, "get_lprobs_and_target",
                            get_lprobs_and_target_with_batch_first_branch)
    sample, logits = make_sample(seed=6)
    task = Task()
    ours = STkLabelSmoothedCrossEntropyCriterion(
        make_cfg(stk_aggregate="average", ignore_prefix_size=1, report_accuracy=True), task)
    theirs = LabelSmoothedCrossEntropyCriterion(task, False, 0.1, ignore_prefix_size=1, report_accuracy=True)
    assert_same_as_label_smoothed(ours, theirs, TimeFirstModel(logits), TimeFirstModel(logits), sample,
                                  ("nll_loss", "n_correct", "total"))


@pytest.mark.parametrize("aggregate", ["atk", "maximum"])
def test_selection_aggregates_equal_independent_computation(aggregate):
    from stk_nmt.core import average_top_k

    sample, logits = make_sample(seed=7)
    crit = STkCriterion(make_cfg(stk_aggregate=aggregate, stk_k=4), Task())
    model = LogitModel(logits)
    loss, _, log = crit(model, sample)
    loss.backward()
    ref_logits = logits.clone().double().requires_grad_(True)
    lprobs = torch.log_softmax(ref_logits, -1).view(-1, V)
    tok, _ = label_smoothed_nll_loss(lprobs, sample["target"].view(-1), 0.1, ignore_index=1, reduce=False)
    valid = tok.view(-1)[sample["target"].view(-1).ne(1)]
    n = valid.numel()
    ref = (average_top_k(valid, 4) if aggregate == "atk" else valid.max()) * n
    ref.backward()
    torch.testing.assert_close(loss.double(), ref.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.logits.grad.double(), ref_logits.grad, rtol=1e-5, atol=1e-7)
    assert int(log["agg_k"]) == (4 if aggregate == "atk" else 1)
