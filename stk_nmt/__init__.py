"""stk_nmt: STk loss aggregation and top-K hinge losses for PyTorch, and a fairseq --user-dir plugin.

`import stk_nmt.core` never imports fairseq. When fairseq imports this package as a --user-dir
(fairseq is then already loaded), the criteria are registered and fairseq checkpoints are made
loadable under torch >= 2.6 and its checkpoint copies atomic (see stk_nmt/checkpoints.py).
"""

import sys

__version__ = "0.1.0"

if "fairseq" in sys.modules:
    from .checkpoints import allow_fairseq_checkpoints, make_checkpoint_copies_atomic

    allow_fairseq_checkpoints()
    make_checkpoint_copies_atomic()
    from . import criterions  # noqa: F401  (registers the criteria with fairseq)
