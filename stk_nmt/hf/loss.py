"""The token-level loss for the Trainer: transformers' label-smoothed token losses, aggregated over
the micro-batch's valid tokens (labels != -100) by the core, with lam held in fp32.

Needs only torch and the core: a custom training loop can use STkTokenLoss directly (call
`lam_step()` after each optimizer step that really ran, `discard_lam_gradient()` after a skipped one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import torch
from torch import nn

from stk_nmt.core import LambdaForm, get_aggregate, rank_masked
from stk_nmt.core.aggregates import lam_gradient_sum, lam_sgd_step, resolve_k_settings
from stk_nmt.core.precision import keep_fp32, upcast

from .arguments import STkArguments, check_stk_arguments

IGNORE_INDEX = -100  # transformers' label for positions that are not targets (padding, prompts)


def label_smoothed_token_losses(logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.0,
                                ignore_index: int = IGNORE_INDEX, shift_labels: bool = False):
    """(losses, nll, mask), flat, one per target position, as transformers' LabelSmoother computes
    them before it sums: loss = (1 - epsilon) * nll + epsilon * mean over the vocabulary of -log p.

    shift_labels: causal LM (the logits at position t predict labels[t + 1]). Computed in fp32 (fp64
    stays fp64) whatever the logits' dtype: the core's precision rule. mask: labels != ignore_index.
    """
    if shift_labels:
        logits, labels = logits[..., :-1, :], labels[..., 1:]
    log_probs = torch.log_softmax(upcast(logits), dim=-1)
    mask = labels.ne(ignore_index)
    target = torch.where(mask, labels, torch.zeros_like(labels))
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    losses = nll if epsilon == 0 else (1 - epsilon) * nll - epsilon * log_probs.mean(dim=-1)
    return losses.reshape(-1), nll.reshape(-1), mask.reshape(-1)


def _logits_of(outputs) -> torch.Tensor:
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    return outputs.logits if hasattr(outputs, "logits") else outputs[0]


class STkTokenLoss(nn.Module):
    """compute_loss_func(outputs, labels, num_items_in_batch) of the Trainer, with lam as its state.

    Returns n * A / num_items_in_batch for a micro-batch of n valid tokens and aggregate value A (A
    itself when num_items_in_batch is None): the Trainer's scaling of its own token-averaged loss, so
    with stk_aggregate="average" this is transformers' label-smoothed loss, and under gradient
    accumulation each micro-batch weighs by its tokens as there. k is resolved per micro-batch
    (k = ceil(stk_k_ratio * n), or min(stk_k, n)).

    lam (ST_k, MAT_k): set by the first forward in train mode with gradients on (the module's
    `training` flag, set by the Trainer mixin from the model's) to the k-th largest valid loss,
    averaged over processes; before that, eval forwards use their own k-th largest, not stored.
    Each training forward adds n * dA/dlam and n to an fp32 accumulator; `lam_step()` applies one
    SGD step with the token-weighted mean over the micro-batches and processes.
    """

    def __init__(self, stk: Optional[STkArguments] = None, label_smoothing: float = 0.0,
                 shift_labels: bool = False, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        stk = STkArguments() if stk is None else stk
        check_stk_arguments(stk)
        if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"label_smoothing_factor must be in [0, 1), got label_smoothing_factor={label_smoothing!r}")
        self.name = stk.stk_aggregate
        self.kind = get_aggregate(self.name)  # the registry's aggregate: its module, masked form, lam rule
        self.k, self.k_ratio = resolve_k_settings(stk.stk_k, stk.stk_k_ratio)
        self.lam_lr = stk.stk_lam_lr
        self.epsilon, self.shift_labels, self.ignore_index = float(label_smoothing), shift_labels, ignore_index
        self.aggregate = self.kind.build(k=self.k, k_ratio=self.k_ratio, delta=stk.stk_delta,
                                         smoother=stk.stk_smoother, lam_init=stk.stk_lam_init, clip_k=True)
        if self.lam_module is not None:
            # lam is stepped here, not by an optimizer: no autograd gradient is needed for it.
            self.lam_module.lam.requires_grad_(False)
        # (sum over micro-batches of n * dA/dlam, sum of n) since the last optimizer step.
        self.register_buffer("lam_grad_accum", torch.zeros(2), persistent=False)
        # For the logs: (sum of the k-th largest loss, sum of the lam used, training batches).
        self.register_buffer("log_sums", torch.zeros(3), persistent=False)

    @property
    def lam_module(self) -> Optional[LambdaForm]:
        return self.aggregate if isinstance(self.aggregate, LambdaForm) else None

    @property
    def lam(self) -> Optional[torch.Tensor]:
        """lam as stored (a 0-dim fp32 tensor), or None for an aggregate without one."""
        return None if self.lam_module is None else self.lam_module.lam.detach()

    @property
    def lam_initialized(self) -> bool:
        return self.lam_module is not None and self.lam_module.lam_ready

    def _apply(self, fn, recurse=True):
        # The accumulators stay fp32 under .half()/.to(bfloat16), like lam (the core keeps lam fp32).
        return keep_fp32(self, ("lam_grad_accum", "log_sums"), super()._apply, fn, recurse)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        self.lam_grad_accum.zero_()
        return result

    def forward(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        if labels is None:
            raise ValueError("STkTokenLoss needs the labels: the batch has no `labels` (the Trainer passes "
                             "them only when the data collator provides them)")
        losses, _, mask = label_smoothed_token_losses(_logits_of(outputs), labels, self.epsilon,
                                                      self.ignore_index, self.shift_labels)
        training = self.training and torch.is_grad_enabled()
        lam_module, lam = self.lam_module, None
        # The criteria's masked path (core/aggregates/masked.py): n, k, one sort, the k-th largest.
        batch = rank_masked(self.kind, losses, mask, self.k, self.k_ratio)
        n, k, kth = batch.n, batch.k, batch.kth
        if lam_module is not None:
            if not lam_module.lam_ready and training:
                # The core's rule (core/aggregates/lam_init.py): a lam set by hand is kept, an unset one
                # takes this batch's k-th largest loss averaged over the processes.
                value, ready = self.kind.initial_lam(lam_module.lam, kth)
                if bool(ready.all()):  # False: non-finite on every process, try again next batch
                    lam_module.lam.data.copy_(value)
                    lam_module.mark_lam_set()
            lam = lam_module.lam if lam_module.lam_ready else kth  # eval before training: not stored
        total = batch.total(losses, mask, lam, smoother=getattr(lam_module, "smoother", "srelu"),
                            delta=getattr(lam_module, "delta", 0.01))
        if training:
            self._record(losses, mask, n, k, kth, lam)
        if num_items_in_batch is None:
            denominator = torch.clamp(n, min=1)
        else:
            denominator = num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
        return total / denominator

    @torch.no_grad()
    def _record(self, losses, mask, n, k, kth, lam) -> None:
        lam_module = self.lam_module
        used = kth if lam is None else lam.detach().reshape(()).float()
        self.log_sums += torch.stack([kth.float(), used.float(), torch.ones_like(used)])
        if lam_module is None or not lam_module.lam_ready:
            return
        grad_sum = lam_gradient_sum(losses, mask, lam, k, lam_module.smoother, lam_module.delta)
        use = torch.isfinite(grad_sum)  # a non-finite batch (fp16 overflow) contributes nothing
        zero = grad_sum.new_zeros(())
        self.lam_grad_accum += torch.stack([torch.where(use, grad_sum, zero),
                                            torch.where(use, n.to(grad_sum.dtype), zero)]).float()

    @torch.no_grad()
    def lam_step(self) -> None:
        """One SGD step on lam with the gradient accumulated since the last step (every process must
        call it: one all-reduce); then a fresh accumulator."""
        if self.lam_module is not None:
            lam_sgd_step(self.lam_module.lam.data, self.lam_grad_accum, self.lam_lr)
        self.lam_grad_accum.zero_()

    def discard_lam_gradient(self) -> None:
        """Forget the accumulated gradient (the optimizer step was skipped)."""
        self.lam_grad_accum.zero_()

    def pop_log_stats(self) -> dict:
        """Means over the training batches since the last call of the k-th largest token loss and of
        the lam used, in nats; {} when there was none. One read-back."""
        kth_sum, lam_sum, batches = self.log_sums.tolist()
        self.log_sums.zero_()
        if batches == 0:
            return {}
        stats = {"stk_kth_loss": kth_sum / batches}
        if self.lam_module is not None:
            stats["stk_lam"] = lam_sum / batches
        return stats
