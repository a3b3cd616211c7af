"""lam's lifecycle in the fairseq criteria (LamLifecycle, mixed into AggregatedCriterion): its setup,
first value, checkpoints, the range warning, and the criterion's own update of lam
(--stk-lam-optimizer sgd): exact gradient, applied once per optimizer step. The gradient itself (lam_gradient_sum) is the core's (core/aggregates/lam_update.py);
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

import logging
import weakref
from typing import Optional

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from stk_nmt.core import LambdaForm, masked_kth_largest
from stk_nmt.core.aggregates import lam_sgd_step
from stk_nmt.core.aggregates.lam_init import lam_is_set
from stk_nmt.core.precision import keep_fp32

logger = logging.getLogger(__name__)

# lam outside the batch's loss range: checked every LAM_RANGE_CHECK_EVERY training batches (one
# read-back then, none in between); warned about after LAM_RANGE_WARN_AFTER batches in a row, then
# at most once every LAM_RANGE_WARN_EVERY batches.
LAM_RANGE_CHECK_EVERY = 100
LAM_RANGE_WARN_AFTER = 100
LAM_RANGE_WARN_EVERY = 2000


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


class LamLifecycle:
    """lam's lifecycle in a criterion (mixed into AggregatedCriterion, an nn.Module with `aggregate`
    and `kind`, the registry's aggregate): its setup, first value, own SGD, gradient accumulation,
    checkpoints and the warning when it leaves the losses' range. The forward calls
    `_initialize_lam`, `_lam_by_sgd` and `_track_lam_range`; LamGradientTap calls
    `accumulate_lam_gradient`; the optimizer-step hook calls `apply_lam_step`."""

    @property
    def lam_module(self) -> Optional[LambdaForm]:
        """The lambda-form aggregate (STk/MATk) holding lam, or None for aggregates without one."""
        return self.aggregate if isinstance(self.aggregate, LambdaForm) else None

    def _setup_lam(self, cfg) -> None:
        """After self.aggregate is built: lam's fairseq shape, its first-value flag, and with
        --stk-lam-optimizer sgd the criterion's own copy and accumulator."""
        lam_module = self.lam_module
        if lam_module is not None:
            # A one-element 1-D lam instead of the core's 0-dim one: fairseq's legacy_ddp all-reduce
            # slices every gradient, which raises IndexError on a criterion whose only parameter is
            # 0-dim. The core accepts any one-element lam.
            lam_module.lam = torch.nn.Parameter(lam_module.lam.detach().reshape(1))
            # Consecutive training batches with lam below / above every valid token loss (item: the
            # degenerate-settings warning); device counters, read every LAM_RANGE_CHECK_EVERY batches.
            self.register_buffer("lam_outside_streak", torch.zeros(2, dtype=torch.long), persistent=False)
            self._train_batches = 0
            self._next_range_warning = 0
        if lam_module is not None and self.lam_optimizer == "sgd":
            # The value the criterion's own SGD maintains; lam is reset to it before every forward,
            # undoing whatever fairseq's optimizer wrote into lam (weight decay, fp16 master copy).
            # Not persistent: state_dict() writes it into aggregate.lam, so checkpoints look the
            # same whichever rule trained lam.
            self.register_buffer("lam_value", lam_module.lam.detach().clone(), persistent=False)
            # (sum over micro-batches of n * dST_k/dlam, sum of n) since the last optimizer step.
            self.register_buffer("lam_grad_accum", torch.zeros(2), persistent=False)
            # fairseq's optimizer sees a zero gradient for lam (no step, no clipping share).
            lam_module.lam.register_hook(torch.zeros_like)
            self._register_state_dict_hook(_write_lam_value)

    def _apply(self, fn, recurse=True):
        # lam_value and the accumulator stay fp32 under .half() like lam itself (the core keeps lam fp32).
        return keep_fp32(self, ("lam_value", "lam_grad_accum"), super()._apply, fn, recurse)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        """Accept None: fairseq stores None for a criterion without parameters, so warm-starting from
        a label_smoothed_cross_entropy checkpoint keeps lam fresh (initialised on the first training
        batch)."""
        if state_dict is None:
            logger.info("checkpoint has no criterion state: lam starts fresh")
            return torch.nn.modules.module._IncompatibleKeys([], [])
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        if hasattr(self, "lam_value"):
            self.lam_value.copy_(self.lam_module.lam.detach())
            self.lam_grad_accum.zero_()
        return result

    def _lam_by_sgd(self) -> bool:
        return hasattr(self, "lam_value")

    @torch.no_grad()
    def _initialize_lam(self, ranked: torch.Tensor, k: torch.Tensor, training: bool) -> None:
        """Before lam is set: keep a lam set by hand, or, on the first training batch, set lam to that
        batch's k-th largest valid token loss (the core's rule: core/aggregates/lam_init.py). One
        read-back per batch until lam is set (on the first training batch, the criterion's only one)."""
        agg = self.lam_module
        if training:
            value, ready = self.kind.initial_lam(agg.lam, masked_kth_largest(ranked, k))
        else:  # validation: no collective (ranks may see different numbers of batches), no initialisation
            value, ready = agg.lam.detach(), lam_is_set(agg.lam, agg.lam_initialized)
        if not bool(ready.all()):
            return  # unset, or non-finite everywhere (an fp16 overflow): lam stays unset, not poisoned
        agg.lam.data.copy_(value)
        agg.mark_lam_set()
        if self._lam_by_sgd():
            self.lam_value.copy_(value)

    def accumulate_lam_gradient(self, lam_grad_sum: torch.Tensor, count: torch.Tensor, loss_grad: torch.Tensor):
        """Called by LamGradientTap in the backward of one training batch's loss."""
        if self.lam_module.lam.grad is None:
            # The first backward since fairseq's zero_grad: a new update (or an AMP retry) begins.
            self.lam_grad_accum.zero_()
        # A dummy batch (loss multiplied by 0) or a non-finite batch contributes nothing.
        use = (loss_grad.reshape(()) != 0) & torch.isfinite(lam_grad_sum)
        zero = lam_grad_sum.new_zeros(())
        self.lam_grad_accum += torch.stack([torch.where(use, lam_grad_sum, zero), torch.where(use, count, zero)]).float()
        mark_pending(self)

    @torch.no_grad()
    def apply_lam_step(self) -> None:
        """One SGD step on lam with the accumulated gradient; called after an optimizer step."""
        if self.lam_module.lam.grad is None:
            # zero_grad ran after the last backward (fp16 overflow): that update was thrown away.
            self.lam_grad_accum.zero_()
            return
        lam_sgd_step(self.lam_value, self.lam_grad_accum, self.lam_lr)
        self.lam_module.lam.data.copy_(self.lam_value)
        self.lam_grad_accum.zero_()

    @torch.no_grad()
    def _track_lam_range(self, ranked: torch.Tensor, n: torch.Tensor, lam: torch.Tensor) -> None:
        """Count consecutive training batches with lam outside [min, max] of the valid losses."""
        lam = lam.detach().reshape(()).float()
        top = ranked[0]
        bottom = ranked.gather(0, torch.clamp(n - 1, min=0).reshape(1)).reshape(())
        outside = torch.stack([lam < bottom, lam > top]) & (n > 0)
        self.lam_outside_streak.copy_(torch.where(outside, self.lam_outside_streak + 1, 0))
        self._train_batches += 1
        if self._train_batches % LAM_RANGE_CHECK_EVERY == 0:
            self._warn_if_lam_degenerate()

    def _warn_if_lam_degenerate(self) -> None:
        below, above = self.lam_outside_streak.tolist()  # one read-back per LAM_RANGE_CHECK_EVERY batches
        if max(below, above) < LAM_RANGE_WARN_AFTER or self._train_batches < self._next_range_warning:
            return
        self._next_range_warning = self._train_batches + LAM_RANGE_WARN_EVERY
        lam = float(self.lam_module.lam.detach().reshape(()))
        change = ("--stk-lam-init, --stk-lam-lr" if self._lam_by_sgd()
                  else "--stk-lam-init, or --stk-lam-optimizer sgd (fairseq's optimizer moves lam by about --lr per update)")
        if below >= LAM_RANGE_WARN_AFTER:
            logger.warning(
                f"lam = {lam:.4g} has been below every token loss for the last {below} training batches: "
                f"ST_k has degenerated into the plain average of the token losses (every token selected). "
                f"Check {change} (a large --stk-lam-lr overshoots downwards)."
            )
        else:
            logger.warning(
                f"lam = {lam:.4g} has been above every token loss for the last {above} training batches: "
                f"no token is selected, ST_k is about (k/n) * lam and its gradients vanish (gnorm near 0). "
                f"Check {change} (unset --stk-lam-init starts at the first batch's k-th largest loss)."
            )


def _write_lam_value(module: LamLifecycle, state_dict, prefix, local_metadata):
    """State-dict hook: the saved lam is the value the criterion's own SGD maintains."""
    key = prefix + "aggregate.lam"
    if key in state_dict:
        state_dict[key] = module.lam_value.detach().clone()
    return state_dict
