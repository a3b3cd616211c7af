"""build_aggregate: the aggregate module called by name, for adapters that take it from a flag."""

from __future__ import annotations

from typing import Optional

from .lambda_forms import MATk, STk
from .modules import Aggregate, Average, AverageTopK, Maximum

AGGREGATES = ("average", "maximum", "atk", "matk", "stk")
# The arguments of build_aggregate each aggregate uses (it ignores the others); "delta" only with
# the srelu smoother. Adapters warn about an ignored argument the user gave (ignored_arguments).
AGGREGATE_ARGUMENTS = {
    "average": (),
    "maximum": (),
    "atk": ("k", "k_ratio"),
    "matk": ("k", "k_ratio", "lam_init"),
    "stk": ("k", "k_ratio", "delta", "smoother", "lam_init"),
}
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


def ignored_arguments(name: str, given: dict, smoother: str = "srelu") -> list:
    """The names of `given` ({argument: value}; None = not given) that the aggregate `name` does not
    use, in the order given: k and k_ratio for average and maximum, delta with a smoother other than
    srelu (the one in use, `smoother`), ..."""
    if name not in AGGREGATE_ARGUMENTS:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got aggregate={name!r}")
    used = set(AGGREGATE_ARGUMENTS[name])
    if smoother != "srelu":
        used.discard("delta")
    return [arg for arg, value in given.items() if value is not None and arg not in used]
