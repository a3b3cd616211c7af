"""fairseq criteria: an individual token loss + a core aggregate. Imported by stk_nmt/__init__.py.

`aggregated.AggregatedCriterion` is the shared base (see its docstring for the subclass contract).
"""

from .aggregated import AggregateConfig, AggregatedCriterion  # noqa: F401
from .label_smoothed import STkCriterion, STkLabelSmoothedCrossEntropyCriterion  # noqa: F401
