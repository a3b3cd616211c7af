"""STkTokenLoss against transformers' own loss (aggregate=average) and against the core (ST_k)."""

import math

import pytest
import torch

pytest.importorskip("transformers")
from hf_tiny import pad_causal, causal_examples, tiny_gpt2, tiny_marian  # noqa: E402
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402

from stk_nmt.core import STk, lambda_form  # noqa: E402
from stk_nmt.hf import STkArguments, STkTokenLoss  # noqa: E402


def _grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _seq2seq_batch():
    batch = pad_causal(causal_examples(3, seed=1))
    labels = pad_causal(causal_examples(3, seed=2))["labels"]
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_average_is_transformers_label_smoothed_loss_values_and_gradients(kind, epsilon):
    model = (tiny_gpt2() if kind == "causal" else tiny_marian()).double()
    batch = pad_causal(causal_examples(3, seed=1)) if kind == "causal" else _seq2seq_batch()
    assert (batch["labels"] == -100).any()  # padding is part of the comparison
    shift = kind == "causal"
    loss_fn = STkTokenLoss(STkArguments(stk_aggregate="average"), label_smoothing=epsilon, shift_labels=shift)
    num_items = (batch["labels"][:, 1:] if shift else batch["labels"]).ne(-100).sum() + 7  # as under accumulation
    for items in (None, num_items):
        # transformers' own: LabelSmoother, and for epsilon 0 also the model's built-in loss.
        model.zero_grad()
        outputs = model(**batch)
        reference = LabelSmoother(epsilon=epsilon)(outputs, batch["labels"], shift_labels=shift, num_items_in_batch=items)
        # LabelSmoother sums the smoothing term in fp32 even for fp64 logits: 1e-7 then, else exact to 1e-12.
        tol = 1e-12 if epsilon == 0 else 1e-7
        references = [(reference, tol)]
        if epsilon == 0 and items is None:
            references.append((outputs.loss, 1e-6))  # computed by transformers in fp32 even for fp64 logits
        reference.backward()
        expected_grads = _grads(model)
        model.zero_grad()
        inputs = {key: value for key, value in batch.items() if key != "labels" or kind == "seq2seq"}
        ours = loss_fn(model(**inputs), batch["labels"], num_items_in_batch=items)
        ours.backward()
        for ref, rel in references:
            assert ours.item() == pytest.approx(ref.item(), rel=rel)
        for got, want in zip(_grads(model), expected_grads):
            torch.testing.assert_close(got, want, rtol=tol * 100, atol=tol)


def test_stk_is_the_cores_reference_on_the_unpadded_tokens():
    torch.manual_seed(0)
    logits = torch.randn(4, 9, 30, dtype=torch.float64)
    labels = torch.randint(0, 30, (4, 9))
    labels[0, 6:] = -100
    labels[2, 3:] = -100
    labels[3, 0] = -100
    valid = labels.ne(-100)
    # Independent token losses: torch's cross-entropy has the same label-smoothing form as transformers.
    token_losses = torch.nn.functional.cross_entropy(logits[valid], labels[valid], label_smoothing=0.1, reduction="none")
    n = int(valid.sum())
    k = math.ceil(0.8 * n)
    for lam_init in (None, 1.7):
        ours = STkTokenLoss(STkArguments(stk_k_ratio=0.8, stk_delta=0.05, stk_lam_init=lam_init), label_smoothing=0.1)
        ours.train()
        value = ours({"logits": logits}, labels)  # no num_items_in_batch: the micro-batch's mean-like A
        reference = STk(k_ratio=0.8, delta=0.05, lam_init=lam_init).double().train()
        expected = reference(token_losses)  # the core's module, its own first-batch lam when lam_init is None
        assert ours.lam.item() == pytest.approx(reference.lam.detach().item(), rel=1e-7)
        assert value.item() == pytest.approx(expected.item(), rel=1e-7)
        # ... and the closed form at that lam, on the valid tokens only
        direct = lambda_form(token_losses, torch.tensor(float(ours.lam), dtype=torch.float64), k, delta=0.05)
        assert value.item() == pytest.approx(direct.item(), rel=1e-7)


@pytest.mark.parametrize("name", ["maximum", "atk", "matk"])
def test_every_core_aggregate_is_selectable(name):
    from stk_nmt.core import build_aggregate

    torch.manual_seed(1)
    logits = torch.randn(2, 7, 11, dtype=torch.float64)
    labels = torch.randint(0, 11, (2, 7))
    labels[1, 4:] = -100
    valid = labels.ne(-100)
    token_losses = torch.nn.functional.cross_entropy(logits[valid], labels[valid], reduction="none")
    ours = STkTokenLoss(STkArguments(stk_aggregate=name, stk_k=5, stk_lam_init=0.5)).train()
    reference = build_aggregate(name, k=5, lam_init=0.5).double().train()
    assert ours({"logits": logits}, labels).item() == pytest.approx(reference(token_losses).item(), rel=1e-9)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(stk_k=5, stk_k_ratio=0.5), "stk_k=5 stk_k_ratio=0.5"),
        (dict(stk_k_ratio=1.5), r"stk_k_ratio must be in \(0, 1\], got stk_k_ratio=1.5"),
        (dict(stk_k=0), "stk_k=0"),
        (dict(stk_delta=-1.0), "stk_delta=-1.0"),
        (dict(stk_lam_lr=0.0), "stk_lam_lr=0.0"),
        (dict(stk_lam_init=float("nan")), "stk_lam_init=nan"),
        (dict(stk_aggregate="mean"), "stk_aggregate='mean'"),
        (dict(stk_smoother="tanh"), "stk_smoother='tanh'"),
        (dict(stk_lam_optimizer="fairseq"), "stk_lam_optimizer='fairseq'"),
        (dict(stk_aggregate="average", stk_k_ratio=1.5), "stk_k_ratio=1.5"),  # whatever the aggregate
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, match, tmp_path):
    from stk_nmt.hf import STkTrainingArguments

    with pytest.raises(ValueError, match=match):
        STkArguments(**kwargs)
    with pytest.raises(ValueError, match=match):
        STkTrainingArguments(output_dir=str(tmp_path), **kwargs)


def test_label_smoothing_outside_range_is_refused():
    with pytest.raises(ValueError, match="label_smoothing_factor=1.0"):
        STkTokenLoss(label_smoothing=1.0)


def test_defaults_are_the_fairseq_criterions():
    from stk_nmt.criterions.aggregated import AggregateConfig

    ours, theirs = STkArguments(), AggregateConfig()
    for name in ("stk_aggregate", "stk_k", "stk_k_ratio", "stk_delta", "stk_smoother", "stk_lam_init",
                 "stk_lam_optimizer", "stk_lam_lr"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert STkTokenLoss().k_ratio == 0.96


def test_a_lam_set_by_hand_before_the_first_batch_is_kept():
    # The core's first-value rule (core/aggregates/lam_init.py) through the Trainer's loss: a lam written
    # before the first training batch stays; an unset one takes the batch's k-th largest token loss.
    torch.manual_seed(1)
    logits = torch.randn(2, 7, 20, dtype=torch.float64)
    labels = torch.randint(0, 20, (2, 7))
    token_losses = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), labels.reshape(-1), reduction="none")
    k = math.ceil(0.5 * token_losses.numel())
    kth = torch.sort(token_losses, descending=True).values[k - 1].item()
    for by_hand in (None, 2.25):
        ours = STkTokenLoss(STkArguments(stk_k_ratio=0.5)).train()
        if by_hand is not None:
            ours.lam.data.fill_(by_hand)
        ours({"logits": logits}, labels)
        assert ours.lam.item() == pytest.approx(kth if by_hand is None else by_hand, rel=1e-6)


@pytest.mark.parametrize("aggregate", ["stk", "matk", "atk", "average"])
def test_a_training_step_reads_nothing_back_from_the_device(aggregate):
    """After lam's first batch, forward, backward and lam_step make no host read-back: on the meta
    device, which holds no values, any read-back raises (a GPU step would wait for the device)."""
    loss = STkTokenLoss(STkArguments(stk_aggregate=aggregate, stk_k_ratio=0.5), label_smoothing=0.1)
    loss.train()
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, 6, 7, 8]])
    loss({"logits": logits}, labels).backward()  # the first batch sets lam: one read-back, once
    loss.lam_step()
    loss.to("meta")
    logits = torch.empty(2, 5, 11, device="meta", requires_grad=True)
    for count in (None, torch.tensor(8, device="meta")):
        value = loss({"logits": logits}, torch.empty(2, 5, dtype=torch.long, device="meta"), num_items_in_batch=count)
        value.backward()
        loss.lam_step()
        assert value.shape == () and logits.grad.shape == (2, 5, 11)
