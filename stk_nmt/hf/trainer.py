"""STkTrainer / STkSeq2SeqTrainer: transformers' Trainers whose loss is STkTokenLoss, with lam's lifecycle.

Why a mixin and not only `Trainer(compute_loss_func=...)`: the hook computes a loss, but lam also
needs (1) to know whether the forward is a training one (the hook does not see the model's mode),
(2) one step per optimizer step, skipped with the optimizer's, and (3) to be saved with the
checkpoint and restored on resume. The mixin does these three and hands the loss to the Trainer as
its compute_loss_func, so that the Trainer's own machinery (num_items_in_batch across micro-batches
and processes, no extra division for gradient accumulation) applies unchanged.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import torch
from transformers import Seq2SeqTrainer, Trainer, TrainerCallback
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.trainer import _is_peft_model

from .arguments import STkArguments, stk_arguments_of
from .loss import STkTokenLoss

logger = logging.getLogger(__name__)

LAM_FILE = "stk_lam.pt"  # in each checkpoint-N folder, beside optimizer.pt


class _LamStep(TrainerCallback):
    """After every optimizer step of the Trainer: lam's SGD step, or nothing when the step was skipped
    (accelerate's GradScaler found an inf/NaN gradient); either way a fresh accumulator."""

    def __init__(self, loss: STkTokenLoss):
        self.loss = loss

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        if getattr(optimizer, "step_was_skipped", False):
            self.loss.discard_lam_gradient()
        else:
            self.loss.lam_step()


def _shifts_labels(trainer) -> bool:
    """Whether the logits at position t predict labels[t + 1] (a causal LM), by the rule transformers'
    Trainer applies to its own label smoothing: the model class is a causal LM (peft unwrapped).
    (The Trainer's `_loss_shifts_labels`, used to count num_items_in_batch, misses causal LMs whose
    class name does not end in ForCausalLM, e.g. GPT2LMHeadModel.)"""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if _is_peft_model(model):
        model = model.base_model.model
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return False
    return model._get_name() in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()


class STkTrainerMixin:
    """Put before a transformers Trainer class: `class MyTrainer(STkTrainerMixin, Trainer)`.

    The stk_* settings come from `args` (STkTrainingArguments / STkSeq2SeqTrainingArguments) or from
    `stk=STkArguments(...)` with plain TrainingArguments; label smoothing is the Trainer's own
    `label_smoothing_factor`. `self.stk_loss` is the STkTokenLoss (lam: `trainer.stk_loss.lam`).
    """

    def __init__(self, *args, stk: Optional[STkArguments] = None, **kwargs):
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("compute_loss_func cannot be given to an STk Trainer: it computes the loss itself "
                             "(STkTokenLoss); use a plain Trainer for another loss")
        super().__init__(*args, **kwargs)
        in_args = hasattr(self.args, "stk_aggregate")
        if stk is not None and in_args:
            raise ValueError("give the stk_* settings either in args (STkTrainingArguments) or as stk=, not both")
        stk = stk if stk is not None else stk_arguments_of(self.args) if in_args else STkArguments()
        self.stk_loss = STkTokenLoss(stk, label_smoothing=self.args.label_smoothing_factor,
                                     shift_labels=_shifts_labels(self)).to(self.args.device)
        # The Trainer then counts num_items_in_batch over the accumulated micro-batches (and processes)
        # and does not divide the loss by gradient_accumulation_steps again.
        self.compute_loss_func = self.stk_loss
        self.add_callback(_LamStep(self.stk_loss))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Training or evaluation, as the model is (training_step: model.train(); evaluation: model.eval()).
        self.stk_loss.train(model.training)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        # lam is training state like the optimizer's: saved with it (not with save_only_model).
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            torch.save(self.stk_loss.state_dict(), os.path.join(output_dir, LAM_FILE))

    def _load_optimizer_and_scheduler(self, checkpoint: Optional[str]) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, LAM_FILE)
        if not os.path.isfile(path):
            # e.g. a checkpoint of a plain Trainer: lam is initialised on the first training batch.
            logger.info(f"{checkpoint} holds no {LAM_FILE}: lam starts fresh")
            return
        self.stk_loss.load_state_dict(torch.load(path, map_location=self.args.device, weights_only=True))

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training log: lam and the k-th largest token loss since the last one
            logs.update(self.stk_loss.pop_log_stats())
        return super().log(logs, *args, **kwargs)


class STkTrainer(STkTrainerMixin, Trainer):
    """transformers.Trainer with the STk token loss (causal LMs, or any model with `logits`)."""


class STkSeq2SeqTrainer(STkTrainerMixin, Seq2SeqTrainer):
    """transformers.Seq2SeqTrainer with the STk token loss (MarianMT, T5, BART, ...)."""
