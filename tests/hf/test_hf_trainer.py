"""lam's lifecycle inside transformers' own Trainer loop: gradient accumulation, resume, evaluation,
bf16 autocast on CPU."""

import pytest
import torch

pytest.importorskip("transformers")
from hf_tiny import causal_examples, pad_causal, tiny_llama  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from stk_nmt.core import lambda_form, resolve_k  # noqa: E402
from stk_nmt.hf import LAM_FILE, STkTrainer, STkTrainingArguments  # noqa: E402
from stk_nmt.hf.loss import label_smoothed_token_losses  # noqa: E402


def collate(rows):
    return pad_causal(rows)


def make_args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, per_device_eval_batch_size=4,
                learning_rate=1e-2, max_steps=2, logging_steps=1, save_strategy="no", report_to=[],
                use_cpu=True, seed=0, data_seed=0, disable_tqdm=True, dataloader_num_workers=0,
                remove_unused_columns=False, stk_k_ratio=0.75, stk_lam_lr=0.5)
    base.update(kw)
    return STkTrainingArguments(**base)


class Recorder(TrainerCallback):
    """lam at every optimizer step's end, and at train begin (after a resume's loading)."""

    def __init__(self, trainer_box):
        self.box, self.at_begin, self.steps = trainer_box, None, []

    def on_train_begin(self, args, state, control, **kw):
        self.at_begin = self.box[0].stk_loss.lam.clone()

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(self.box[0].stk_loss.lam.clone())


class MicroBatchTrainer(STkTrainer):
    """Records each training micro-batch (its labels) and the lam it used."""

    seen = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.seen.append((dict((k, v.clone()) for k, v in inputs.items()), self.stk_loss.lam.clone(),
                              num_items_in_batch))
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


def trainer_for(tmp_path, rows, cls=STkTrainer, seed=0, **kw):
    box = []
    trainer = cls(model=tiny_llama(seed), args=make_args(tmp_path, **kw), train_dataset=rows, eval_dataset=rows[:4],
                  data_collator=collate)
    recorder = Recorder(box)
    box.append(trainer)
    trainer.add_callback(recorder)
    return trainer, recorder


def test_gradient_accumulation_moves_lam_once_by_the_token_weighted_mean(tmp_path):
    rows = causal_examples(6, seed=3, min_len=3, max_len=14)
    trainer, recorder = trainer_for(tmp_path, rows, cls=MicroBatchTrainer, max_steps=1, gradient_accumulation_steps=3,
                                    stk_lam_init=2.5)
    trainer.seen = []
    initial = tiny_llama(0).double().eval()  # the same weights as the trained model before its one step
    trainer.train()
    assert len(trainer.seen) == 3 and len(recorder.steps) == 1
    # The same lam for the three micro-batches: no step in between.
    assert all(lam.item() == 2.5 for _, lam, _ in trainer.seen)
    # Expected step, independently: autograd of each micro-batch's ST_k at lam, weighted by its n.
    weighted, total_n, counts, grads = 0.0, 0, [], []
    for inputs, _, num_items in trainer.seen:
        with torch.no_grad():
            logits = initial(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        losses, _, mask = label_smoothed_token_losses(logits, inputs["labels"], shift_labels=True)
        valid = losses[mask]
        lam = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
        value = lambda_form(valid, lam, resolve_k(valid.numel(), k_ratio=0.75), delta=0.01)
        (grad,) = torch.autograd.grad(value, lam)
        weighted += valid.numel() * grad.item()
        grads.append(grad.item())
        total_n += valid.numel()
        counts.append(valid.numel())
    assert len(set(counts)) > 1  # micro-batches of different sizes: the weighting matters
    assert int(trainer.seen[0][2]) == total_n  # the Trainer's num_items_in_batch covers the 3 micro-batches
    expected = 2.5 - 0.5 * weighted / total_n
    assert recorder.steps[0].item() == pytest.approx(expected, abs=1e-6)
    # Not the plain mean of the micro-batch gradients:
    assert abs(recorder.steps[0].item() - (2.5 - 0.5 * sum(grads) / len(grads))) > 1e-4


def test_a_skipped_optimizer_step_leaves_lam_and_drops_the_accumulated_gradient(tmp_path):
    from types import SimpleNamespace

    from stk_nmt.hf.trainer import _LamStep

    trainer, _ = trainer_for(tmp_path, causal_examples(4, seed=7), stk_lam_init=1.0)
    loss = trainer.stk_loss
    loss.lam_grad_accum.copy_(torch.tensor([3.0, 10.0]))
    _LamStep(loss).on_optimizer_step(None, None, None, optimizer=SimpleNamespace(step_was_skipped=True))
    assert loss.lam.item() == 1.0 and torch.count_nonzero(loss.lam_grad_accum) == 0
    loss.lam_grad_accum.copy_(torch.tensor([3.0, 10.0]))
    _LamStep(loss).on_optimizer_step(None, None, None, optimizer=SimpleNamespace(step_was_skipped=False))
    assert loss.lam.item() == pytest.approx(1.0 - 0.5 * 0.3) and torch.count_nonzero(loss.lam_grad_accum) == 0


def test_causal_lms_shift_the_labels_and_seq2seq_models_do_not(tmp_path):
    from hf_tiny import tiny_gpt2, tiny_marian

    for model, shifts in ((tiny_gpt2(), True), (tiny_llama(), True), (tiny_marian(), False)):
        trainer = STkTrainer(model=model, args=make_args(tmp_path), data_collator=collate)
        assert trainer.stk_loss.shift_labels is shifts, type(model).__name__


def test_resume_from_a_checkpoint_restores_lam_bit_for_bit(tmp_path):
    rows = causal_examples(16, seed=4)
    full, full_rec = trainer_for(tmp_path / "a", rows, max_steps=4, save_strategy="steps", save_steps=2)
    full.train()
    checkpoint = tmp_path / "a" / "checkpoint-2"
    saved = torch.load(checkpoint / LAM_FILE, weights_only=True)
    assert torch.equal(saved["aggregate.lam"], full_rec.steps[1])  # what was saved is lam after step 2
    resumed, resumed_rec = trainer_for(tmp_path / "b", rows, seed=1, max_steps=4)  # other initial weights
    assert not resumed.stk_loss.lam_initialized
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed_rec.at_begin.dtype == torch.float32
    assert torch.equal(resumed_rec.at_begin, full_rec.steps[1])  # bit for bit
    # ... and it was not re-initialised from the first resumed batch: the runs go on identically.
    assert [v.item() for v in resumed_rec.steps] == [v.item() for v in full_rec.steps[2:]]


def test_evaluation_neither_initialises_nor_moves_lam(tmp_path):
    rows = causal_examples(8, seed=5)
    trainer, recorder = trainer_for(tmp_path, rows, max_steps=2)
    before = trainer.evaluate()
    assert not trainer.stk_loss.lam_initialized and trainer.stk_loss.lam.item() == 0.0
    assert bool(trainer.stk_loss.aggregate.lam_initialized) is False
    # eval before training used each batch's own k-th largest loss as lam: ST_k close to that batch's AT_k.
    batch = pad_causal(rows[:4])
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    losses, _, mask = label_smoothed_token_losses(logits, batch["labels"], shift_labels=True)
    valid = losses[mask]
    k = resolve_k(valid.numel(), k_ratio=0.75)
    kth = torch.sort(valid, descending=True).values[k - 1]
    assert before["eval_loss"] == pytest.approx(lambda_form(valid, kth, k, delta=0.01).item(), rel=1e-5)
    trainer.train()
    lam = trainer.stk_loss.lam.clone()
    trainer.evaluate()
    assert torch.equal(trainer.stk_loss.lam, lam)
    assert torch.count_nonzero(trainer.stk_loss.lam_grad_accum) == 0


def test_bf16_autocast_on_cpu_keeps_lam_fp32(tmp_path):
    rows = causal_examples(8, seed=6)
    trainer, recorder = trainer_for(tmp_path, rows, max_steps=2, bf16=True)
    logs = []

    class Logs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            logs_list.append(dict(logs))

    logs_list = logs
    trainer.add_callback(Logs())
    trainer.train()
    assert trainer.stk_loss.lam.dtype == torch.float32 and trainer.stk_loss.lam_grad_accum.dtype == torch.float32
    assert trainer.stk_loss.lam_initialized and len({v.item() for v in recorder.steps}) == 2
    step_logs = [log for log in logs if "stk_lam" in log]
    assert len(step_logs) == 2
    # The first step used lam = its batch's k-th largest loss (logged as such).
    assert step_logs[0]["stk_lam"] == pytest.approx(step_logs[0]["stk_kth_loss"], rel=1e-6)
