"""The criterion's own update of lam (--stk-lam-optimizer sgd): exact gradient, applied once per
optimizer step.

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

from stk_nmt.core import compute_dtype, get_smoother, srelu_grad


def lam_gradient_sum(losses: torch.Tensor, mask: torch.Tensor, lam: torch.Tensor, k: torch.Tensor,
                     smoother: str = "srelu", delta: float = 0.01) -> torch.Tensor:
    """n * d/dlam of (1/n) sum smoother(l_i - lam) + (k/n) lam  =  k - sum_valid smoother'(l_i - lam).

    losses/mask: per-position losses and the bool mask of the n valid ones; k a tensor. Returns a
    0-dim fp32 (fp64 for fp64 losses) tensor, without reading anything back from the device.
    """
    dtype = compute_dtype(losses.dtype)
    x = losses.detach().reshape(-1).to(dtype) - lam.detach().reshape(()).to(dtype)
    if smoother == "srelu":
        slope = srelu_grad(x, delta)
    else:
        # Other smoothers: their derivative by autograd on this detached copy (O(n), off the main graph).
        with torch.enable_grad():
            x = x.requires_grad_(True)
            (slope,) = torch.autograd.grad(get_smoother(smoother, delta)(x).sum(), x)
    return k.to(dtype) - torch.where(mask.reshape(-1), slope, torch.zeros_like(slope)).sum()


def sum_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The sum of `value` over the processes of torch.distributed (itself when not distributed)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


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
