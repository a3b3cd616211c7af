"""The lambda-form aggregates, which hold a trainable threshold lam: MAT_k and ST_k.

    A(l, lam) = (1/n) sum_i smoother(l_i - lam) + (k/n) lam

`LambdaForm` holds lam and everything about it (initialisation, fp32 storage, its optimizer
group); `STk` (smoother SReLU) and `MATk` (the exact hinge) are its two named forms. Code that
needs "an aggregate with a lam" checks isinstance(module, LambdaForm).
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional

import torch
from torch import nn

from ..precision import keep_fp32
from ..selection import select_kth_largest
from . import functional
from .lam_init import LAM_UNSET, first_lam, lam_is_set
from .modules import Aggregate
from .smoothers import SMOOTHERS
from .validation import check_delta, check_k_args, select_valid


def lam_group(lams: Iterable[nn.Parameter], lr: Optional[float] = None, weight_decay: float = 0.0) -> dict:
    """One parameter group for `lams`: weight_decay (default 0) and, when given, its own lr.
    Here rather than in lam_params.py, which imports LambdaForm: no import cycle."""
    group = {"params": list(lams), "weight_decay": weight_decay}
    if lr is not None:
        group["lr"] = lr
    return group


class LambdaForm(Aggregate):
    """(1/n) sum smoother(l_i - lam) + (k/n) lam with a trainable scalar lam.

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
            it, so validation never fixes lam. A lam written by hand before the first training
            batch (`module.lam.fill_(x)`, any x but 0.0; `set_lam(x)`, any x) is kept: the rule is
            in lam_init.py.
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
        self.lam = nn.Parameter(torch.tensor(LAM_UNSET if lam_init is None else float(lam_init), dtype=torch.float32))
        # Saved in state_dict so a resumed run does not re-initialise lam.
        self.register_buffer("lam_initialized", torch.tensor(lam_init is not None))
        # Its Python-side copy, so that no training step reads the buffer back from the device.
        self._lam_ready = lam_init is not None

    @property
    def lam_ready(self) -> bool:
        """Whether lam is set (lam_initialized, without reading the buffer back from the device)."""
        return self._lam_ready

    @torch.no_grad()
    def mark_lam_set(self) -> None:
        """Record that lam now holds its value (the buffer, for checkpoints, and its Python-side copy)."""
        self.lam_initialized.fill_(True)
        self._lam_ready = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._lam_ready = bool(self.lam_initialized)  # read once, at load time

    def _apply(self, fn, recurse=True):
        # lam (and its gradient) stays fp32 whatever .half()/.to(dtype) asks: only its device follows.
        return keep_fp32(self, ("lam",), super()._apply, fn, recurse)

    @torch.no_grad()
    def initialize_lam(self, valid: torch.Tensor, k: int) -> bool:
        """lam = the k-th largest of `valid` (over processes), unless set by hand (lam_init.py).
        Returns whether lam is now set (not when no process had a finite k-th largest loss)."""
        value, ready = first_lam(self.lam, select_kth_largest(valid.detach().float(), k))
        if not bool(ready):  # read back on the first training batch only
            return False
        self.lam.copy_(value)
        self.mark_lam_set()
        return True

    @torch.no_grad()
    def set_lam(self, value: float) -> None:
        """Set lam by hand, LAM_UNSET (0.0) included: the first training batch then keeps it."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"lam must be a finite number, got lam={value!r}")
        self.lam.fill_(float(value))
        self.mark_lam_set()

    def forward(self, losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        valid = select_valid(losses, mask)
        k = self._resolve_k(valid.numel())
        lam = self.lam
        ready = self._lam_ready  # no read-back once lam is set (a GPU training step must not wait)
        if not ready:
            if self.training and torch.is_grad_enabled():
                # Every process takes this branch on its first training batch (first_lam's collective).
                ready = self.initialize_lam(valid, k)
            else:
                ready = bool(lam_is_set(self.lam))  # written by hand since construction: keep it
                if ready:
                    self.mark_lam_set()
        if not ready:
            # Evaluation before any training batch (or a first batch with no finite loss): this
            # batch's k-th largest loss, not stored.
            lam = select_kth_largest(valid.detach().float(), k)  # in fp32, lam's dtype
        self._record(valid.numel(), k)
        return functional.lambda_form(valid, lam, k, smoother=self.smoother, delta=self.delta, fused=self.fused)

    def param_group(self, lr: Optional[float] = None, weight_decay: float = 0.0) -> dict:
        """An optimizer parameter group for lam (no weight decay by default: it would pull lam to 0)."""
        return lam_group([self.lam], lr, weight_decay)

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, k_ratio={self.k_ratio}, delta={self.delta}, smoother={self.smoother!r}, "
            f"lam={float(self.lam.detach()):.4g}, fused={self.fused}"
        )


class STk(LambdaForm):
    """ST_k = (1/n) sum SReLU_delta(l_i - lam) + (k/n) lam (paper Eq. 6); arguments: LambdaForm."""


class MATk(LambdaForm):
    """MAT_k = (1/n) sum [l_i - lam]_+ + (k/n) lam: the lambda form with the exact hinge."""

    def __init__(
        self, k: Optional[int] = None, k_ratio: Optional[float] = None, lam_init: Optional[float] = None,
        clip_k: bool = False,
    ):
        super().__init__(k=k, k_ratio=k_ratio, smoother="relu", lam_init=lam_init, fused=False, clip_k=clip_k)
