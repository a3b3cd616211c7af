"""The criterion's own update of lam (--stk-lam-optimizer sgd): exact gradient, averaged over processes.

Why not leave lam to fairseq's optimizer: fairseq hands every parameter to one optimizer with one
lr schedule, so lam would get the model's warm-up, weight decay (towards 0) and, under Adam, steps
of about lr (1e-3) per update. The k-th largest token loss falls by several nats early in
training, far faster than that, and with lam stuck away from it ST_k degenerates (to the average
when lam is below every loss, to a few-token maximum when above). A plain SGD step on the exact
gradient, with its own constant learning rate, moves lam by up to lr * k/n per batch downwards and
lr * (1 - k/n) upwards and settles where a soft count of k losses lies above lam.
"""

from __future__ import annotations

import torch

from stk_nmt.core import get_smoother, srelu_grad


def lam_gradient(valid: torch.Tensor, lam: torch.Tensor, k: int, smoother: str = "srelu", delta: float = 0.01):
    """d/dlam of (1/n) sum smoother(l_i - lam) + (k/n) lam = k/n - (1/n) sum smoother'(l_i - lam).

    valid: 1-D detached losses of the n valid items. Returns a 0-dim fp32 (or fp64) tensor.
    """
    n = valid.numel()
    x = valid.detach().to(torch.float64 if valid.dtype == torch.float64 else torch.float32) - lam.detach().to(
        torch.float64 if valid.dtype == torch.float64 else torch.float32
    )
    if smoother == "srelu":
        slope = srelu_grad(x, delta)
    else:
        # Other smoothers: their derivative by autograd on this detached copy (O(n), off the main graph).
        with torch.enable_grad():
            x = x.requires_grad_(True)
            (slope,) = torch.autograd.grad(get_smoother(smoother, delta)(x).sum(), x)
    return k / n - slope.sum() / n


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the processes of torch.distributed (itself when not distributed),
    so that every rank applies the same update and lam stays identical everywhere."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value
