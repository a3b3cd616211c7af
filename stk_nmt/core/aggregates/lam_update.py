"""The gradient of the lambda-form aggregates with respect to lam, in closed form.

Used by training loops that update lam themselves (the fairseq criteria's --stk-lam-optimizer sgd,
whose optimizer-step hook stays in stk_nmt/criterions/lam_update.py): the exact gradient of the
batch, computed as a tensor, without reading anything back from the device.
"""

from __future__ import annotations

import torch

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
