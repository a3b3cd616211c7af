"""build_aggregate: the aggregate module called by name, for adapters that take it from a flag.

The names, their labels and the arguments each uses are the registry's (registry.py); these are
the by-name doors the adapters and the older code call.
"""

from __future__ import annotations

from typing import Optional

from .modules import Aggregate
from .registry import AGGREGATE_ARGUMENTS, AGGREGATE_LABELS, AGGREGATES, get_aggregate

__all__ = ["AGGREGATES", "AGGREGATE_ARGUMENTS", "AGGREGATE_LABELS", "build_aggregate", "ignored_arguments"]


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
    return get_aggregate(name).build(k=k, k_ratio=k_ratio, delta=delta, smoother=smoother, lam_init=lam_init,
                                     clip_k=clip_k)


def ignored_arguments(name: str, given: dict, smoother: str = "srelu") -> list:
    """The names of `given` ({argument: value}; None = not given) that the aggregate `name` does not
    use, in the order given: k and k_ratio for average and maximum, delta with a smoother other than
    srelu (the one in use, `smoother`), ..."""
    used = set(get_aggregate(name).arguments)
    if smoother != "srelu":
        used.discard("delta")
    return [arg for arg, value in given.items() if value is not None and arg not in used]
