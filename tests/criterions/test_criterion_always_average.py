"""--stk-always-average eos: end-of-sentence tokens enter as in the plain average, the rest through ST_k.

Independent references: fairseq's per-token label_smoothed_nll_loss, the per-token weights written out by
hand (1 for an EOS token, SReLU'(l - lam) = 0.5 (1 + x / sqrt(x^2 + delta^2)) for the others), k counted
by hand over the non-EOS tokens, and a sort for the k-th largest of those.
"""

import math

import pytest
import torch

pytest.importorskip("fairseq")

import stk_nmt  # noqa: E402,F401  (registers the criteria)
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss  # noqa: E402
from fairseq.data import Dictionary  # noqa: E402

from fairseq_fakes import LogitModel  # noqa: E402
from stk_nmt.criterions import STkCriterion  # noqa: E402
from stk_nmt.criterions.label_smoothed import STkLabelSmoothedCrossEntropyConfig  # noqa: E402

V, B, T = 11, 4, 6
PAD, EOS = 1, 2
LAM, DELTA, RATIO = 1.9, 0.3, 0.7


class Task:
    def __init__(self):
        self.target_dictionary = Dictionary()  # pad 1, eos 2
        for i in range(V - len(self.target_dictionary)):
            self.target_dictionary.add_symbol(f"t{i}")


def make_sample(seed=0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(4, V, (B, T), generator=gen)
    lengths = [6, 3, 5, 4]
    for b, length in enumerate(lengths):
        target[b, length - 1] = EOS  # every sentence ends with EOS, then padding
        target[b, length:] = PAD
    sample = {"net_input": {}, "target": target, "ntokens": int(target.ne(PAD).sum())}
    return sample, torch.randn(B, T, V, generator=gen) * 2


def criterion(always):
    cfg = STkLabelSmoothedCrossEntropyConfig(sentence_avg=False, label_smoothing=0.1, stk_k_ratio=RATIO,
                                             stk_delta=DELTA, stk_lam_init=LAM, stk_lam_optimizer="fairseq",
                                             stk_always_average=always)
    return STkCriterion(cfg, Task())


def reference(sample, logits):
    """Loss, logit gradient and lam gradient from hand-written per-token weights."""
    ref_logits = logits.clone().requires_grad_(True)
    lprobs = torch.log_softmax(ref_logits, -1).view(-1, V)
    target = sample["target"].view(-1)
    tok, _ = label_smoothed_nll_loss(lprobs, target, 0.1, ignore_index=PAD, reduce=False)
    tok = tok.view(-1)
    losses = [float(v) for v in tok.detach()]
    eos = [t == EOS for t in target.tolist()]
    valid = [t != PAD for t in target.tolist()]
    rest = [i for i in range(len(losses)) if valid[i] and not eos[i]]
    k = math.ceil(RATIO * len(rest))
    srelu = lambda x: 0.5 * (x + math.sqrt(x * x + DELTA * DELTA) - DELTA)  # noqa: E731
    slope = lambda x: 0.5 * (1 + x / math.sqrt(x * x + DELTA * DELTA))  # noqa: E731
    value = sum(losses[i] for i in range(len(losses)) if valid[i] and eos[i])
    value += sum(srelu(losses[i] - LAM) for i in rest) + k * LAM
    weights = torch.tensor([0.0 if not valid[i] else 1.0 if eos[i] else slope(losses[i] - LAM)
                            for i in range(len(losses))], dtype=tok.dtype)
    (weights * tok).sum().backward()
    lam_grad = k - sum(slope(losses[i] - LAM) for i in rest)
    kth = sorted((losses[i] for i in rest), reverse=True)[k - 1]
    return value, ref_logits.grad, lam_grad, k, len(rest), kth, weights


def test_eos_tokens_get_the_average_weight_and_the_rest_st_k():
    sample, logits = make_sample()
    crit = criterion("eos")
    model = LogitModel(logits)
    loss, sample_size, log = crit(model, sample)
    loss.backward()
    value, logit_grad, lam_grad, k, n_rest, kth, weights = reference(sample, logits)
    assert sample_size == sample["ntokens"] == n_rest + B  # fairseq still divides by every target token
    assert float(loss) == pytest.approx(value, rel=1e-6)
    torch.testing.assert_close(model.logits.grad, logit_grad, rtol=1e-5, atol=1e-7)
    assert float(crit.aggregate.lam.grad) == pytest.approx(lam_grad, rel=1e-5, abs=1e-6)
    # k counts the non-EOS tokens only; the logged k-th largest loss is theirs.
    assert int(log["agg_k"]) == k and int(log["agg_n"]) == n_rest
    assert float(log["kth_loss"]) == pytest.approx(kth, rel=1e-6)
    # The setting matters here: some non-EOS weight differs from 1, and EOS weights do not follow ST_k.
    assert (weights[weights > 0] < 0.99).any()


def test_eos_mode_differs_from_plain_st_k_only_through_eos_tokens():
    sample, logits = make_sample(seed=1)
    plain, eos = criterion("none"), criterion("eos")
    loss_plain, _, log_plain = plain(LogitModel(logits), sample)
    loss_eos, _, _ = eos(LogitModel(logits), sample)
    assert int(log_plain["agg_n"]) == sample["ntokens"]
    assert float(loss_plain) != pytest.approx(float(loss_eos))
    # Without EOS in the targets both modes are the same loss.
    no_eos = dict(sample, target=torch.where(sample["target"].eq(EOS), 5, sample["target"]))
    a, _, _ = plain(LogitModel(logits), no_eos)
    b, _, _ = eos(LogitModel(logits), no_eos)
    torch.testing.assert_close(a, b)


def test_unknown_always_average_value_is_refused():
    with pytest.raises(ValueError, match="--stk-always-average"):
        criterion("punct")
