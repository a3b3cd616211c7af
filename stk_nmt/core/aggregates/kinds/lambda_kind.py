"""The masked form the two lambda-form aggregates (MAT_k, ST_k) share: they differ in the smoother."""

from __future__ import annotations

import torch

from ...precision import upcast
from ..smoothers import get_smoother
from .base import AggregateKind


class LambdaKind(AggregateKind):
    """(1/n) sum smoother(l_i - lam) + (k/n) lam with a trainable lam (core.LambdaForm)."""

    holds_lam = True

    def masked_total(self, losses, mask, n, k, lam=None, *, smoother="srelu", delta=0.01, sorted_desc=None):
        self.needs_lam(lam)
        x = upcast(losses).reshape(-1)
        zero = x.new_zeros(())
        lam_c = lam.reshape(()).to(x.dtype)
        smooth = get_smoother(smoother, delta)
        # k = 0 only for n = 0: no lam term then (lam may be -inf before its initialisation).
        return torch.where(mask.reshape(-1), smooth(x - lam_c), zero).sum() + torch.where(k > 0, k * lam_c, zero)
