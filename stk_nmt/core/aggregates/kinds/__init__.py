"""The aggregates, one class per file, each registered by name on import (registry.py).

A new aggregate is one more file here (imported below) or anywhere else (registered when that
file is imported): a subclass of AggregateKind decorated with @register_aggregate.
"""

# Registration order is the order of the names (the paper's): average, maximum, AT_k, MAT_k, ST_k.
from . import average  # noqa: F401  isort: skip
from . import maximum  # noqa: F401  isort: skip
from . import atk  # noqa: F401  isort: skip
from . import matk  # noqa: F401  isort: skip
from . import stk  # noqa: F401  isort: skip
from .base import AggregateKind
from .lambda_kind import LambdaKind

__all__ = ["AggregateKind", "LambdaKind"]
