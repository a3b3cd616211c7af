"""The criterion's own update of lam (--stk-lam-optimizer sgd): exact gradient, applied once per
optimizer step. The gradient itself (lam_gradient_sum) is the core's (core/aggregates/lam_update.py);
what is here ties it to fairseq's backward and optimizer steps.

Why not leave lam to fairseq's optimizer: fairseq hands every parameter to one optimizer with one
lr schedule, so lam would get the model's warm-up, weight decay (towards 0) and, under Adam, steps
of about lr (1e-3) per update. The k-th largest token loss falls by several nats early in
training, far faster than that, and with lam stuck away from it ST_k degenerates (to the average
when lam is below every loss, to a few-token maximum when above). A plain SGD step on the exact
gradient, with its own constant learning rate, moves lam by up to lr * k/n per update downwards and
lr * (1 - k/n) upwards and settles where a soft count of k losses lies above lam.

When lam moves (see `LamGradientTap` and `after_optimizer_step`): each training forward computes
its batch's lam gradient as a tensor (no read-back); the backward pass of that batch's loss adds it
to an accumulator, weighted by the multiplier fairseq put on the loss (0 for a dummy batch), and
the accumulator is applied when a torch optimizer actually steps. fairseq calls zero_grad at the
start of every update and after an fp16 overflow, which sets lam.grad to None: the first backward
that finds lam.grad None starts a fresh accumulator, and a step without any backward since the
last zero_grad applies nothing. So lam changes exactly when the model's parameters do.
"""

from __future__ import annotations

import weakref

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


class LamGradientTap(torch.autograd.Function):
    """Identity on the criterion's loss; its backward hands (n * lam gradient, n) of the batch to
    the criterion together with the gradient fairseq sent into the loss (0 for a dummy batch)."""

    @staticmethod
    def forward(ctx, loss, lam_grad_sum, count, criterion):
        ctx.criterion = criterion
        ctx.save_for_backward(lam_grad_sum, count)
        return loss.clone()

    @staticmethod
    def backward(ctx, grad):
        lam_grad_sum, count = ctx.saved_tensors
        ctx.criterion.accumulate_lam_gradient(lam_grad_sum, count, grad)
        return grad, None, None, None


# Criteria holding an accumulated lam gradient, applied by the next optimizer step.
_PENDING: "weakref.WeakSet" = weakref.WeakSet()
_HOOK = None


def mark_pending(criterion) -> None:
    global _HOOK
    if _HOOK is None:
        _HOOK = register_optimizer_step_post_hook(after_optimizer_step)
    _PENDING.add(criterion)


def after_optimizer_step(optimizer, args, kwargs) -> None:
    """Global torch hook: runs after every optimizer.step() that really ran (fairseq's optimizers
    are torch optimizers; the AMP GradScaler skips step() on overflow; an fp16 overflow makes
    fairseq skip the step). Applies the accumulated lam gradient of each pending criterion."""
    for criterion in list(_PENDING):
        _PENDING.discard(criterion)
        criterion.apply_lam_step()
