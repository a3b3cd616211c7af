"""build_aggregate: the aggregate module called by name, for adapters that take it from a flag."""

from __future__ import annotations

from typing import Optional

from .lambda_forms import MATk, STk
from .modules import Aggregate, Average, AverageTopK, Maximum

AGGREGATES = ("average", "maximum", "atk", "matk", "stk")
# How tables and figures name them (the paper's names).
AGGREGATE_LABELS = {"average": "Average", "maximum": "Maximum", "atk": "AT_k", "matk": "MAT_k", "stk": "ST_k"}


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
