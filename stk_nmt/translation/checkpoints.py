"""Checkpoint averaging, as fairseq's scripts/average_checkpoints.py does, picking the
checkpoint a resumed run starts from when checkpoint_last.pt is unreadable, and recording which
dictionaries a save dir's checkpoints were trained with.

That script lives in fairseq's source tree but is not part of the installed package, hence this
small equivalent: the model parameters of the last N checkpoints are averaged (in float64, cast
back), everything else (config, criterion state such as STk's lam) is taken from the newest.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Sequence

import torch

from stk_nmt.files import atomic_write, file_sha256, read_json, write_json

# Written by the recipes next to the checkpoints: the data-bin and its dictionaries' hashes.
TRAINING_DATA_RECORD = "training-data.json"

_BY_UPDATE = re.compile(r"^checkpoint_\d+_(\d+)\.pt$")
_BY_EPOCH = re.compile(r"^checkpoint(\d+)\.pt$")


def last_checkpoints(save_dir: Path, n: int) -> list[Path]:
    """The n newest numbered checkpoints (update-numbered ones when present, else epoch-numbered)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    save_dir = Path(save_dir)
    for pattern in (_BY_UPDATE, _BY_EPOCH):
        numbered = sorted(((int(m.group(1)), p) for p in save_dir.glob("checkpoint*.pt")
                           if (m := pattern.match(p.name))), reverse=True)
        if numbered:
            if len(numbered) < n:
                raise ValueError(f"asked to average {n} checkpoints, {save_dir} has {len(numbered)}")
            return [path for _, path in numbered[:n]]
    raise FileNotFoundError(f"no numbered checkpoints (checkpointN.pt or checkpoint_E_U.pt) in {save_dir}")


def _load(path: Path) -> dict:
    # fairseq checkpoints hold argparse/omegaconf objects: weights_only loading cannot read them.
    # These are the user's own training outputs.
    return torch.load(path, map_location="cpu", weights_only=False)


def average_checkpoints(paths: Sequence[Path], output: Path) -> Path:
    if not paths:
        raise ValueError("paths is empty: nothing to average")
    newest = _load(paths[0])
    sums = {name: tensor.double() if tensor.is_floating_point() else tensor.clone()
            for name, tensor in newest["model"].items()}
    for path in paths[1:]:
        model = _load(path)["model"]
        if set(model) != set(sums):
            raise ValueError(f"{path} has different parameters than {paths[0]}")
        for name, tensor in model.items():
            if tensor.is_floating_point():
                sums[name] += tensor.double()
    newest["model"] = {name: (total / len(paths)).to(newest["model"][name].dtype)
                       if total.is_floating_point() else total for name, total in sums.items()}
    output = atomic_write(output, lambda tmp: torch.save(newest, tmp), suffix=".pt")
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {output}")
    return output


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


def dictionary_hashes(data_bin: Path) -> dict[str, str]:
    """SHA-256 of each dict.*.txt of a fairseq data-bin: what a model's vocabulary means."""
    hashes = {p.name: file_sha256(p) for p in sorted(Path(data_bin).glob("dict.*.txt"))}
    if not hashes:
        raise FileNotFoundError(f"no dict.*.txt in {data_bin}")
    return hashes


def record_training_data(save_dir: Path, data_bin: Path) -> Path:
    record = {"data_bin": str(Path(data_bin).resolve()), "dictionaries": dictionary_hashes(data_bin)}
    return write_json(Path(save_dir) / TRAINING_DATA_RECORD, record, indent=1)


def training_dictionaries(checkpoint: Path) -> tuple[str, dict[str, str]] | None:
    """(where, dictionary hashes) of the data a checkpoint was trained on, or None if unknown.

    From the record the recipes leave in the save dir; otherwise from the data-bin named in the
    checkpoint's own configuration (task.data), when that still exists."""
    checkpoint = Path(checkpoint)
    record_path = checkpoint.parent / TRAINING_DATA_RECORD
    if record_path.is_file():
        record = read_json(record_path)
        return f"{record['data_bin']} (per {record_path})", record["dictionaries"]
    try:  # mmap: only the pickled configuration is read, not the weights
        state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
        data = (state.get("cfg") or {})["task"]["data"]
    except Exception:
        return None
    data_bin = Path(str(data).split(os.pathsep)[0])
    if not any(data_bin.glob("dict.*.txt")):
        return None
    return f"{data_bin} (task.data of {checkpoint})", dictionary_hashes(data_bin)
