"""The stk criteria on hand-built samples, against independent computations.

Independent references: fairseq's own label_smoothed_cross_entropy criterion and its per-token
function label_smoothed_nll_loss, the core's unfused lambda_form, a sort for the k-th largest
loss, and central finite differences for the lam gradient.
"""

import math

import pytest
import torch

fairseq = pytest.importorskip("fairseq")

import stk_nmt  # noqa: E402,F401  (registers the criteria: fairseq is imported)
from fairseq.criterions import CRITERION_REGISTRY  # noqa: E402
from fairseq.criterions.label_smoothed_cross_entropy import (  # noqa: E402
    LabelSmoothedCrossEntropyCriterion,
    label_smoothed_nll_loss,
)
from fairseq.data import Dictionary  # noqa: E402
from fairseq.logging import metrics  # noqa: E402

from stk_nmt.core import lambda_form  # noqa: E402
from fairseq_fakes import LogitModel  # noqa: E402
from stk_nmt.criterions import STkCriterion, STkLabelSmoothedCrossEntropyCriterion  # noqa: E402
from stk_nmt.criterions.label_smoothed import STkLabelSmoothedCrossEntropyConfig  # noqa: E402

V, B, T = 11, 3, 5


class Task:
    def __init__(self):
        self.target_dictionary = Dictionary()  # pad index 1
        for i in range(V - len(self.target_dictionary)):
            self.target_dictionary.add_symbol(f"t{i}")


def make_sample(seed=0, pad=1):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(4, V, (B, T), generator=gen)
    target[0, 3:] = pad  # padded sentences
    target[2, 4:] = pad
    ntokens = int(target.ne(pad).sum())
    sample = {"net_input": {}, "target": target, "ntokens": ntokens}
    logits = torch.randn(B, T, V, generator=gen) * 2
    return sample, logits


def make_cfg(**kw):
    kw.setdefault("sentence_avg", False)  # a bare Cfg() holds the unresolved '${optimization...}'
    kw.setdefault("label_smoothing", 0.1)
    return STkLabelSmoothedCrossEntropyConfig(**kw)


def test_registered_under_both_names():
    assert CRITERION_REGISTRY["stk"] is STkCriterion
    assert CRITERION_REGISTRY["stk_label_smoothed_cross_entropy"] is STkLabelSmoothedCrossEntropyCriterion
    assert issubclass(STkCriterion, STkLabelSmoothedCrossEntropyCriterion)


@pytest.mark.parametrize("smoother,aggregate", [("srelu", "stk"), ("softplus", "stk"), ("relu", "matk")])
def test_loss_and_gradients_equal_independent_computation(smoother, aggregate):
    sample, logits = make_sample()
    crit = STkCriterion(make_cfg(stk_aggregate=aggregate, stk_smoother=smoother, stk_k=7, stk_lam_init=1.7,
                                 stk_lam_optimizer="fairseq"), Task())
    model = LogitModel(logits)
    loss, sample_size, log = crit(model, sample)
    loss.backward()

    # Independent: fairseq's per-token function, then the unfused lambda-form of the core.
    ref_logits = logits.clone().requires_grad_(True)
    ref_lam = torch.tensor(1.7, requires_grad=True)
    lprobs = torch.log_softmax(ref_logits, -1).view(-1, V)
    tok, nll = label_smoothed_nll_loss(lprobs, sample["target"].view(-1), 0.1, ignore_index=1, reduce=False)
    mask = sample["target"].view(-1).ne(1)
    n = int(mask.sum())
    ref = lambda_form(tok.view(-1)[mask], ref_lam, 7, smoother=smoother, fused=False) * n
    ref.backward()

    assert sample_size == sample["ntokens"] == n
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.logits.grad, ref_logits.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(crit.aggregate.lam.grad, ref_lam.grad.reshape(1), rtol=1e-5, atol=1e-7)
    # Padding positions get exactly zero gradient.
    pad = sample["target"].eq(1)
    assert pad.any() and torch.count_nonzero(model.logits.grad[pad]) == 0
    # Logged: nll summed over non-pad tokens, the k-th largest token loss by sorting, lam, k.
    torch.testing.assert_close(log["nll_loss"], nll.view(-1)[mask].sum())
    kth = torch.sort(tok.view(-1)[mask].detach(), descending=True).values[6]
    torch.testing.assert_close(log["kth_loss"], kth)
    assert log["agg_k"] == 7 and log["agg_n"] == n and float(log["lam"]) == pytest.approx(1.7)


def assert_same_as_label_smoothed(ours, theirs, m1, m2, sample, log_keys):
    """Our criterion on m1 and label_smoothed_cross_entropy on m2 (two models with the same logits):
    same sample_size, loss, gradients after the trainer's division, and logged `log_keys`."""
    loss1, ss1, log1 = ours(m1, sample)
    loss2, ss2, log2 = theirs(m2, sample)
    assert ss1 == ss2
    torch.testing.assert_close(loss1, loss2, rtol=1e-6, atol=1e-6)
    # The trainer divides by sample_size: same gradients.
    (loss1 / ss1).backward()
    (loss2 / ss2).backward()
    torch.testing.assert_close(m1.logits.grad, m2.logits.grad, rtol=1e-6, atol=1e-8)
    for key in log_keys:
        torch.testing.assert_close(torch.as_tensor(log1[key]).float(), torch.as_tensor(log2[key]).float())
    return log1, log2


@pytest.mark.parametrize("sentence_avg,ignore_prefix", [(False, 0), (True, 0), (False, 1)])
def test_average_aggregate_reproduces_label_smoothed_cross_entropy(sentence_avg, ignore_prefix):
    sample, logits = make_sample(seed=3)
    task = Task()
    ours = STkLabelSmoothedCrossEntropyCriterion(
        make_cfg(stk_aggregate="average", sentence_avg=sentence_avg, ignore_prefix_size=ignore_prefix,
                 report_accuracy=True), task)
    theirs = LabelSmoothedCrossEntropyCriterion(task, sentence_avg, 0.1, ignore_prefix_size=ignore_prefix,
                                                report_accuracy=True)
    log1, log2 = assert_same_as_label_smoothed(ours, theirs, LogitModel(logits), LogitModel(logits), sample,
                                               ("nll_loss", "n_correct", "total", "ntokens", "nsentences"))
    # And the reduced (logged) metrics agree.
    with metrics.aggregate() as agg1:
        type(ours).reduce_metrics([log1, log1])
    with metrics.aggregate() as agg2:
        type(theirs).reduce_metrics([log2, log2])
    for key in ("loss", "nll_loss", "ppl", "accuracy"):
        assert agg1.get_smoothed_values()[key] == pytest.approx(agg2.get_smoothed_values()[key])


def finite_difference_lam_grad(losses, lam, k, delta, h=1e-4):
    """d/dlam of the ST_k value by central differences in float64."""
    losses = losses.double()

    def value(x):
        return float(lambda_form(losses, torch.tensor(x, dtype=torch.float64), k, delta=delta, fused=False))

    return (value(lam + h) - value(lam - h)) / (2 * h)


def test_sgd_lam_update_and_checkpoint_state():
    sample, logits = make_sample(seed=5)
    lr = 0.7
    crit = STkCriterion(make_cfg(stk_k_ratio=0.6, stk_lam_lr=lr, stk_delta=0.5), Task())
    crit.train()
    model = LogitModel(logits)
    # First batch: lam set to the k-th largest valid token loss (lam_init unset).
    loss, _, log = crit(model, sample)
    lprobs = torch.log_softmax(logits, -1).view(-1, V)
    tok, _ = label_smoothed_nll_loss(lprobs, sample["target"].view(-1), 0.1, ignore_index=1, reduce=False)
    valid = tok.view(-1)[sample["target"].view(-1).ne(1)].detach()
    n = valid.numel()
    k = math.ceil(0.6 * n)
    kth = torch.sort(valid, descending=True).values[k - 1]
    assert float(log["lam"]) == pytest.approx(float(kth), abs=1e-6)
    # fairseq's optimizer sees a zero gradient for lam.
    loss.backward()
    assert crit.aggregate.lam.grad is not None and float(crit.aggregate.lam.grad) == 0.0
    # The criterion's own SGD step, lam - lr * dST_k/dlam (finite differences), happens when an
    # optimizer steps, not in forward or backward.
    assert float(crit.lam_value) == pytest.approx(float(kth), abs=1e-6)
    torch.optim.SGD(model.parameters(), lr=0.0).step()
    expected = float(kth) - lr * finite_difference_lam_grad(valid, float(kth), k, 0.5)
    assert float(crit.lam_value) == pytest.approx(expected, abs=1e-5)
    # Whatever fairseq's optimizer does to lam (weight decay) is undone on the next batch.
    with torch.no_grad():
        crit.aggregate.lam.mul_(0.5)
    _, _, log2 = crit(model, sample)
    assert float(log2["lam"]) == pytest.approx(expected, abs=1e-5)
    # The checkpointed lam is the maintained value; a fresh criterion restores it.
    state = crit.state_dict()
    assert set(state) == {"aggregate.lam", "aggregate.lam_initialized"}
    assert float(state["aggregate.lam"]) == pytest.approx(float(crit.lam_value))
    fresh = STkCriterion(make_cfg(stk_k_ratio=0.6, stk_lam_lr=lr, stk_delta=0.5), Task())
    fresh.load_state_dict(state, strict=True)
    assert float(fresh.lam_value) == float(crit.lam_value) and bool(fresh.aggregate.lam_initialized)
    # No update in eval mode (validation).
    fresh.eval()
    before = float(fresh.lam_value)
    fresh(model, sample)
    assert float(fresh.lam_value) == before


@pytest.mark.parametrize("lam_optimizer", ["sgd", "fairseq"])
def test_lam_set_by_hand_before_the_first_batch_is_kept(lam_optimizer):
    sample, logits = make_sample(seed=3)
    crit = STkCriterion(make_cfg(stk_k=5, stk_lam_optimizer=lam_optimizer, stk_lam_lr=0.1), Task())
    with torch.no_grad():
        crit.aggregate.lam.fill_(1.25)
    crit.train()
    loss, _, log = crit(LogitModel(logits), sample)
    assert float(log["lam"]) == 1.25 and crit.aggregate.lam.item() == 1.25
    assert bool(crit.aggregate.lam_initialized)
    if lam_optimizer == "sgd":
        assert float(crit.lam_value) == 1.25  # the value its own SGD then moves
    lprobs = torch.log_softmax(logits, -1).view(-1, V)
    tok, _ = label_smoothed_nll_loss(lprobs, sample["target"].view(-1), 0.1, ignore_index=1, reduce=False)
    valid = tok.view(-1)[sample["target"].view(-1).ne(1)]
    ref = lambda_form(valid, torch.tensor(1.25), 5, fused=False) * valid.numel()
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)


def test_warm_start_from_parameter_free_criterion_state():
    crit = STkCriterion(make_cfg(), Task())
    crit.load_state_dict(None)  # what fairseq passes for a label_smoothed_cross_entropy checkpoint
    assert not bool(crit.aggregate.lam_initialized)


def test_lam_stays_fp32_under_half():
    crit = STkCriterion(make_cfg(stk_lam_init=0.123456789), Task()).half()
    assert crit.aggregate.lam.dtype == torch.float32 and crit.lam_value.dtype == torch.float32


def test_half_does_not_round_lam_value_through_fp16():
    # keep_fp32 restores the value from before the conversion: 0.123456789 is not an fp16 number.
    crit = STkCriterion(make_cfg(stk_lam_init=0.123456789), Task()).half()
    exact = torch.tensor(0.123456789, dtype=torch.float32)
    assert crit.lam_value.item() == exact.item() != torch.tensor(0.123456789).half().float().item()
    assert crit.lam_grad_accum.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(stk_k=5, stk_k_ratio=0.5), "--stk-k 5 --stk-k-ratio 0.5"),
        (dict(stk_k_ratio=1.5), "--stk-k-ratio 1.5"),
        (dict(stk_lam_lr=0.0), "--stk-lam-lr 0.0"),
        (dict(stk_delta=-1.0), "--stk-delta -1.0"),
        (dict(label_smoothing=1.0), "--label-smoothing 1.0"),
        # whatever the aggregate (average and maximum ignore k, but a bad flag is still a mistake)
        (dict(stk_aggregate="average", stk_k_ratio=1.5), "--stk-k-ratio 1.5"),
        (dict(stk_aggregate="maximum", stk_k=0), "--stk-k 0"),
        (dict(stk_aggregate="average", stk_lam_lr=-1.0), "--stk-lam-lr -1.0"),
        (dict(stk_lam_init=float("nan")), "--stk-lam-init nan"),
        (dict(ignore_prefix_size=-1), "--ignore-prefix-size -1"),
        # a count k that cannot fit in any batch
        (dict(stk_k=215, max_tokens=200), "--stk-k 215 cannot fit.*--max-tokens 200"),
        (dict(stk_k=200, max_tokens=4096, max_tokens_valid=150), "--stk-k 200 cannot fit.*--max-tokens-valid 150"),
    ],
)
def test_bad_flags_raise_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        STkCriterion(make_cfg(**kwargs), Task())


def test_default_k_is_the_papers_ratio():
    crit = STkCriterion(make_cfg(), Task())
    assert crit.k is None and crit.k_ratio == 0.96


def test_reduce_false_is_refused():
    sample, logits = make_sample()
    crit = STkCriterion(make_cfg(), Task())
    with pytest.raises(ValueError, match="reduce=False"):
        crit(LogitModel(logits), sample, reduce=False)
