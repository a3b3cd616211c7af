"""MAT_k: (1/n) sum [l_i - lam]_+ + (k/n) lam, the lambda form with the exact hinge."""

from __future__ import annotations

from ..batched import batched_mat_k
from ..lambda_forms import MATk
from ..registry import register_aggregate
from .lambda_kind import LambdaKind


@register_aggregate
class MATkKind(LambdaKind):
    name, label = "matk", "MAT_k"
    arguments = ("k", "k_ratio", "lam_init")

    def build(self, k=None, k_ratio=None, delta=0.01, smoother="srelu", lam_init=None, clip_k=False):
        return MATk(k=k, k_ratio=k_ratio, lam_init=lam_init, clip_k=clip_k)

    def batched(self, losses, k=None, lam=None, delta=None):
        self.needs_lam(lam)
        return batched_mat_k(losses, lam, k)
