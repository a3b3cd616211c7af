"""fairseq compatibility: make fairseq checkpoints loadable under torch >= 2.6, and never torn by a kill.

Loading: torch.load defaults to weights_only=True.

fairseq 0.12 calls torch.load without weights_only, and its checkpoints pickle an
argparse.Namespace (the legacy "args"), which the weights-only unpickler refuses:
"Unsupported global: GLOBAL argparse.Namespace". Allow-listing that one class keeps the safe
loader for everything else. Runs when fairseq imports this package as --user-dir, so
fairseq-train --restore-file, fairseq-generate and fairseq-interactive given `--user-dir stk_nmt`
load checkpoints. Without --user-dir no code of this package runs (docs/criteria.md, "Loading checkpoints").
"""

import argparse
import os
import shutil

import torch

# Classes pickled inside fairseq 0.12 checkpoints besides tensors and plain containers.
FAIRSEQ_CHECKPOINT_GLOBALS = (argparse.Namespace,)


def allow_fairseq_checkpoints() -> None:
    """Allow-list FAIRSEQ_CHECKPOINT_GLOBALS for torch.load (no-op on torch without the allow-list)."""
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is not None:
        add_safe_globals(list(FAIRSEQ_CHECKPOINT_GLOBALS))


def make_checkpoint_copies_atomic() -> None:
    """fairseq saves the first checkpoint of a save atomically (a .tmp file and a rename), then
    copies it to the others (checkpoint_last.pt, checkpoint_best.pt) with PathManager.copy, a
    plain shutil.copyfile: a kill during that copy leaves a torn checkpoint_last.pt. Local copies
    become a copy to a temporary file and a rename, so each file is whole or the previous one."""
    from fairseq.file_io import PathManager

    from .files import atomic_write
    from .processes import hold_point

    original = PathManager.copy
    if getattr(original, "stk_atomic", False):
        return

    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if PathManager.path_requires_pathmanager(dst_path) or PathManager.path_requires_pathmanager(src_path):
            return original(src_path, dst_path, overwrite)
        if not overwrite and os.path.exists(dst_path):
            return False

        def write(tmp: str) -> None:
            shutil.copyfile(src_path, tmp)
            hold_point(f"copy:{os.path.basename(dst_path)}")  # tests kill a save here

        atomic_write(dst_path, write)
        return True

    copy.stk_atomic = True
    PathManager.copy = staticmethod(copy)
