"""lam's lifecycle in a training loop that handles lam itself, in closed form.

Used by the training-loop adapters (the fairseq criteria's --stk-lam-optimizer sgd, whose
optimizer-step hook stays in stk_nmt/criterions/lam_update.py; the Hugging Face Trainer's in
stk_nmt/hf): the exact gradient of a batch (a tensor, without reading anything back from the
device), and the SGD step on the gradient accumulated over the micro-batches of one optimizer step.
lam's first value follows one rule for every loop: core/aggregates/lam_init.py.
"""

from __future__ import annotations

import torch

from ..distributed import sum_over_processes
from ..precision import compute_dtype
from .smoothers import get_smoother, srelu_grad


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


@torch.no_grad()
def lam_sgd_step(lam_value: torch.Tensor, accumulated: torch.Tensor, lr: float) -> None:
    """lam_value -= lr * g in place, g = sum_b n_b g_b / sum_b n_b over every process.

    accumulated: (sum over the micro-batches b of lam_gradient_sum, sum of their n_b) on this
    process; summed over the processes (one two-element all-reduce), so every rank takes the same
    step. No valid token anywhere: no step."""
    total = sum_over_processes(accumulated)
    grad = torch.where(total[1] > 0, total[0] / torch.clamp(total[1], min=1.0), 0.0)
    lam_value.sub_(lr * grad)
