"""Make fairseq checkpoints loadable under torch >= 2.6 (torch.load defaults to weights_only=True).

fairseq 0.12 calls torch.load without weights_only, and its checkpoints pickle an
argparse.Namespace (the legacy "args"), which the weights-only unpickler refuses:
"Unsupported global: GLOBAL argparse.Namespace". Allow-listing that one class keeps the safe
loader for everything else. Runs when fairseq imports this package as --user-dir, so
fairseq-train --restore-file, fairseq-generate and fairseq-interactive given `--user-dir stk_nmt`
load checkpoints. Without --user-dir, set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (see docs/criteria.md).
"""

import argparse

import torch

# Classes pickled inside fairseq 0.12 checkpoints besides tensors and plain containers.
FAIRSEQ_CHECKPOINT_GLOBALS = (argparse.Namespace,)


def allow_fairseq_checkpoints() -> None:
    """Allow-list FAIRSEQ_CHECKPOINT_GLOBALS for torch.load (no-op on torch without the allow-list)."""
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is not None:
        add_safe_globals(list(FAIRSEQ_CHECKPOINT_GLOBALS))
