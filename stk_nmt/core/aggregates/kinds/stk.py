"""ST_k (paper Eq. 6): (1/n) sum SReLU_delta(l_i - lam) + (k/n) lam, or another smoother."""

from __future__ import annotations

from ..batched import batched_st_k
from ..lambda_forms import STk
from ..registry import register_aggregate
from .lambda_kind import LambdaKind


@register_aggregate
class STkKind(LambdaKind):
    name, label = "stk", "ST_k"
    arguments = ("k", "k_ratio", "delta", "smoother", "lam_init")

    def build(self, k=None, k_ratio=None, delta=0.01, smoother="srelu", lam_init=None, clip_k=False):
        return STk(k=k, k_ratio=k_ratio, delta=delta, smoother=smoother, lam_init=lam_init, clip_k=clip_k)

    def batched(self, losses, k=None, lam=None, delta=0.01):
        self.needs_lam(lam)
        return batched_st_k(losses, lam, k, delta=delta)
