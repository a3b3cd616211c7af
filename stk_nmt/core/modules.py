"""nn.Module forms of the aggregates, with the trainable threshold lam for MAT_k and ST_k.

Every aggregate is a module with forward(losses, mask=None) -> scalar, so any individual loss
(token cross-entropy, top-K hinge, LDAM...) combines with any aggregate through one name:
build_aggregate("stk", k_ratio=0.96).
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import nn

from . import aggregates as F
from .smoothers import SMOOTHERS
from .validation import check_delta, check_k_args, resolve_k, select_valid

AGGREGATES = ("average", "maximum", "atk", "matk", "stk")


class Aggregate(nn.Module):
    """Base class: remembers n and k of the last call for logging.

    `k_clipped` counts the calls where a count k larger than the batch was replaced by k = n
    (only with clip_k=True; otherwise such a batch raises ValueError).
    """

    last_n: int = 0
    last_k: int = 0
    k_clipped: int = 0

    def _record(self, n: int, k: int) -> None:
        self.last_n, self.last_k = n, k

    def _resolve_k(self, n: int) -> int:
        """resolve_k, except that with clip_k a count k > n becomes n (and is counted)."""
        if getattr(self, "clip_k", False) and self.k is not None and self.k > n:
            self.k_clipped += 1
            return n
        return resolve_k(n, self.k, self.k_ratio)


class Average(Aggregate):
    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        value = F.average(losses, mask)
        n = losses.numel() if mask is None else int(mask.sum())
        self._record(n, n)
        return value


class Maximum(Aggregate):
    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        value = F.maximum(losses, mask)
        self._record(losses.numel() if mask is None else int(mask.sum()), 1)
        return value


class AverageTopK(Aggregate):
    """AT_k by exact selection. clip_k: a batch smaller than a count k uses k = n (AT_n = the average)."""

    def __init__(self, k: Optional[int] = None, k_ratio: Optional[float] = None, clip_k: bool = False):
        super().__init__()
        check_k_args(k, k_ratio)
        self.k, self.k_ratio, self.clip_k = k, k_ratio, clip_k

    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        valid = select_valid(losses, mask)
        k = self._resolve_k(valid.numel())
        self._record(valid.numel(), k)
        return F.average_top_k(valid, k)

    def extra_repr(self) -> str:
        return f"k={self.k}, k_ratio={self.k_ratio}"


class STk(Aggregate):
    """ST_k = (1/n) sum SReLU_delta(l_i - lam) + (k/n) lam with a trainable scalar lam.

    Args:
        k / k_ratio: exactly one; a count, or a fraction of the valid items of each batch.
        delta: SReLU smoothing (paper default 0.01).
        smoother: "srelu" (ST_k), or "relu" (MAT_k), "elu", "softplus", "leaky_relu".
        lam_init: initial lam. The default None sets lam, on the first *training* forward call
            (module in train mode, gradients enabled), to the k-th largest valid loss of that batch
            (averaged over processes under torch.distributed): that is where the optimum of ST_k
            over lam lies, so top-k selection is active from the first update. Starting at 0 below
            every loss makes ST_k an average until the optimiser has moved lam all the way up,
            which can take thousands of updates at NMT learning rates. A forward in eval mode or
            under no_grad before that uses the batch's own k-th largest loss as lam without storing
            it, so validation never fixes lam.
        fused: use the one-pass fused ST_k kernel (srelu only).
        clip_k: a batch with fewer valid items than a count k uses k = n instead of raising (the
            last partial batch of an epoch); `k_clipped` counts how often. With k = n, AT_k is the
            average, MAT_k is the average whenever lam <= min loss, and ST_k = (1/n) sum
            SReLU(l_i - lam) + lam is the average - delta/2 (same gradients, up to O(delta^2/gap))
            when lam lies many delta below every loss; losses below lam count as about lam.

    lam is an nn.Parameter kept in fp32 even after .half()/.to(bfloat16). Optimise it: pass
    `param_group()` (or lam_param_groups(model)) to your optimizer; it is easy to forget.
    """

    def __init__(
        self,
        k: Optional[int] = None,
        k_ratio: Optional[float] = None,
        delta: float = 0.01,
        smoother: str = "srelu",
        lam_init: Optional[float] = None,
        fused: bool = True,
        clip_k: bool = False,
    ):
        super().__init__()
        check_k_args(k, k_ratio)
        if smoother not in SMOOTHERS:
            raise ValueError(f"smoother must be one of {SMOOTHERS}, got smoother={smoother!r}")
        if smoother == "srelu":
            check_delta(delta)
        if lam_init is not None and not (isinstance(lam_init, (int, float)) and math.isfinite(lam_init)):
            raise ValueError(f"lam_init must be a finite number or None, got lam_init={lam_init!r}")
        self.k, self.k_ratio, self.delta, self.smoother, self.fused = k, k_ratio, delta, smoother, fused
        self.clip_k = clip_k
        self.lam = nn.Parameter(torch.tensor(0.0 if lam_init is None else float(lam_init), dtype=torch.float32))
        # Saved in state_dict so a resumed run does not re-initialise lam.
        self.register_buffer("lam_initialized", torch.tensor(lam_init is not None))

    def _apply(self, fn, recurse=True):
        # Keep lam (and its gradient) in fp32 whatever .half()/.to(dtype) asks: only its device follows.
        lam = self.lam.data
        grad = self.lam.grad
        out = super()._apply(fn, recurse)
        device = self.lam.device
        self.lam.data = lam.to(device=device, dtype=torch.float32)
        if grad is not None:
            self.lam.grad = grad.to(device=device, dtype=torch.float32)
        return out

    @torch.no_grad()
    def initialize_lam(self, valid: torch.Tensor, k: int) -> None:
        value = torch.kthvalue(valid.detach().float(), valid.numel() - k + 1).values
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(value)
            value /= dist.get_world_size()
        self.lam.copy_(value)
        self.lam_initialized.fill_(True)

    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        valid = select_valid(losses, mask)
        k = self._resolve_k(valid.numel())
        lam = self.lam
        if not bool(self.lam_initialized):
            if self.training and torch.is_grad_enabled():
                self.initialize_lam(valid, k)
            else:
                # Evaluation before any training batch: this batch's k-th largest loss, not stored.
                lam = torch.kthvalue(valid.detach().float(), valid.numel() - k + 1).values
        self._record(valid.numel(), k)
        return F.lambda_form(valid, lam, k, smoother=self.smoother, delta=self.delta, fused=self.fused)

    def param_group(self, lr: Optional[float] = None, weight_decay: float = 0.0) -> dict:
        """An optimizer parameter group for lam (no weight decay by default: it would pull lam to 0)."""
        group = {"params": [self.lam], "weight_decay": weight_decay}
        if lr is not None:
            group["lr"] = lr
        return group

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, k_ratio={self.k_ratio}, delta={self.delta}, smoother={self.smoother!r}, "
            f"lam={float(self.lam.detach()):.4g}, fused={self.fused}"
        )


class MATk(STk):
    """MAT_k = (1/n) sum [l_i - lam]_+ + (k/n) lam: ST_k with the exact hinge."""

    def __init__(
        self, k: Optional[int] = None, k_ratio: Optional[float] = None, lam_init: Optional[float] = None,
        clip_k: bool = False,
    ):
        super().__init__(k=k, k_ratio=k_ratio, smoother="relu", lam_init=lam_init, fused=False, clip_k=clip_k)


def build_aggregate(
    name: str,
    k: Optional[int] = None,
    k_ratio: Optional[float] = None,
    delta: float = 0.01,
    smoother: str = "srelu",
    lam_init: Optional[float] = None,
    clip_k: bool = False,
) -> Aggregate:
    """The aggregate called `name` (one of AGGREGATES); k/k_ratio are ignored by average/maximum."""
    if name == "average":
        return Average()
    if name == "maximum":
        return Maximum()
    if name == "atk":
        return AverageTopK(k=k, k_ratio=k_ratio, clip_k=clip_k)
    if name == "matk":
        return MATk(k=k, k_ratio=k_ratio, lam_init=lam_init, clip_k=clip_k)
    if name == "stk":
        return STk(k=k, k_ratio=k_ratio, delta=delta, smoother=smoother, lam_init=lam_init, clip_k=clip_k)
    raise ValueError(f"aggregate must be one of {AGGREGATES}, got aggregate={name!r}")


def lam_parameters(module: nn.Module) -> list:
    """Every lam of the STk/MATk modules inside `module`."""
    return [m.lam for m in module.modules() if isinstance(m, STk)]


def lam_param_groups(
    modules: Iterable[nn.Module] | nn.Module, lr: Optional[float] = None, weight_decay: float = 0.0
) -> list:
    """Parameter groups [other params, lam params] for torch.optim over one or more modules.

    Example: torch.optim.SGD(lam_param_groups([model, stk], lr=0.1), lr=0.01, weight_decay=5e-4)
    optimises lam at lr 0.1 without weight decay and everything else with the optimizer defaults.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    lams, others, seen = [], [], set()
    for module in modules:
        module_lams = {id(p) for p in lam_parameters(module)}
        for p in module.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            (lams if id(p) in module_lams else others).append(p)
    groups = [{"params": others}] if others else []
    lam_group = {"params": lams, "weight_decay": weight_decay}
    if lr is not None:
        lam_group["lr"] = lr
    if lams:
        groups.append(lam_group)
    return groups
