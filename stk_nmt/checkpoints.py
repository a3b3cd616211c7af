"""Deprecated name: the fairseq checkpoint helpers moved to stk_nmt.fairseq_compat.

stk_nmt.checkpoints read like the translation recipes' checkpoint averaging; what lives here is
fairseq compatibility (the torch.load allow-list, atomic checkpoint copies). Kept importable for
code written against the old name.
"""

from .fairseq_compat import FAIRSEQ_CHECKPOINT_GLOBALS, allow_fairseq_checkpoints, make_checkpoint_copies_atomic

__all__ = ["FAIRSEQ_CHECKPOINT_GLOBALS", "allow_fairseq_checkpoints", "make_checkpoint_copies_atomic"]
