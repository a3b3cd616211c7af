"""Which checkpoint a resumed training run starts from, when checkpoint_last.pt is torn or missing."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

def unreadable_reason(path: Path) -> str | None:
    """Why a checkpoint file cannot be loaded (None when it is whole).

    torch.save writes a zip archive: a torn file has no central directory, and testzip checks
    every member's CRC, so a complete read is not needed."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"{type(error).__name__}: {error} ({os.path.getsize(path):,} bytes)"
    return f"member {bad} fails its CRC check" if bad else None


def remove_checkpoint_temporaries(save_dir: Path) -> list[Path]:
    """Removes the temporaries of checkpoint writes that a killed run left in save_dir; returns them.

    Two writers leave them: the atomic checkpoint copy (fairseq_compat, .checkpoint_last.pt.XXXX.tmp)
    and fairseq's own atomic save (checkpoint_best.pt.tmp). Each is a whole checkpoint's size. Call
    only while holding save_dir's lock: then no writer is running."""
    save_dir = Path(save_dir)
    stale = sorted({*save_dir.glob(".checkpoint*.pt.*.tmp"), *save_dir.glob("checkpoint*.pt.tmp")})
    for path in stale:
        path.unlink()
    return stale


_RESUMABLE = re.compile(r"^checkpoint(_last|_best|\d+|_\d+_\d+)\.pt$")


def resume_checkpoint(save_dir: Path) -> tuple[Path | None, list[str]]:
    """The checkpoint a run in save_dir resumes from, and notes on what was skipped and why.

    checkpoint_last.pt when it is readable; otherwise the newest (by modification time) readable
    training checkpoint (checkpoint_best.pt, checkpointN.pt, checkpoint_E_U.pt; never an average).
    None: start from scratch."""
    save_dir = Path(save_dir)
    candidates = sorted((p for p in save_dir.glob("checkpoint*.pt") if _RESUMABLE.match(p.name)),
                        key=lambda p: (p.name != "checkpoint_last.pt", -p.stat().st_mtime))
    notes = []
    for path in candidates:
        reason = unreadable_reason(path)
        if reason is None:
            return path, notes
        notes.append(f"{path.name} is unreadable ({reason})")
    return None, notes
