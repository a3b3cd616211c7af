"""The adapter for any training loop: per-sample loss + core aggregate -> one scalar, and lam's group.

    from stk_nmt.vision import LongTailCriterion
    criterion = LongTailCriterion("ce", aggregate="stk", k_ratio=0.9)      # ST_k, k = 0.9 x batch
    optimizer = torch.optim.SGD([{"params": trainable}, *criterion.param_groups()], lr=0.01)
    loss = criterion(logits, labels)                                       # logits (B, C), labels (B,)

ST_k's threshold lam is a trainable scalar: unless it reaches the optimizer (param_groups) it
never moves and ST_k silently degrades. Its group carries no weight decay.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from stk_nmt.core import LambdaForm, build_aggregate, lam_param_groups
from stk_nmt.core.defaults import K_RATIO
from stk_nmt.core.losses import build_loss


class LongTailCriterion(nn.Module):
    """aggregate(loss(logits, labels)) over the batch.

    Args:
        loss: a per-sample loss module ((B, C), (B,)) -> (B,), or a name of stk_nmt.core.losses.LOSSES.
        aggregate: "average", "maximum", "atk", "matk", "stk" (default, the paper's setting) or any
            name registered with stk_nmt.core.register_aggregate.
        k / k_ratio: for atk/matk/stk: a count, or a fraction of each batch (default k_ratio 0.9).
        delta: SReLU smoothing of ST_k (default 0.01).
        lam_init: ST_k/MAT_k's initial lam; None = the first batch's k-th largest loss.
        class_counts, **loss_options: passed to stk_nmt.core.losses.build_loss when `loss` is a name.
    """

    def __init__(
        self,
        loss: Union[str, nn.Module] = "ce",
        aggregate: str = "stk",
        k: Optional[int] = None,
        k_ratio: Optional[float] = K_RATIO["vision"],
        delta: float = 0.01,
        lam_init: Optional[float] = None,
        class_counts: Optional[Sequence[int]] = None,
        **loss_options,
    ):
        super().__init__()
        if k is not None:
            k_ratio = None  # an explicit count replaces the default ratio
        self.loss = build_loss(loss, class_counts, **loss_options) if isinstance(loss, str) else loss
        # clip_k: a batch smaller than a count k (the last partial batch) uses k = n, counted in
        # k_clipped, instead of killing the run.
        self.aggregate = build_aggregate(aggregate, k=k, k_ratio=k_ratio, delta=delta, lam_init=lam_init, clip_k=True)

    def per_sample(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, labels)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.per_sample(logits, labels))

    def param_groups(self, lr: Optional[float] = None, weight_decay: float = 0.0) -> list:
        """Optimizer groups for the trainable thresholds (empty for average / maximum / atk)."""
        return lam_param_groups(self, lr, weight_decay, others=False)

    @property
    def k_clipped(self) -> int:
        """How many batches so far were smaller than a count k and used k = n."""
        return self.aggregate.k_clipped

    @property
    def lam(self) -> Optional[float]:
        """The current threshold lam (None for aggregates without one)."""
        return float(self.aggregate.lam.detach()) if isinstance(self.aggregate, LambdaForm) else None
