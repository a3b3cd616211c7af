"""Which data a save dir's checkpoints were trained on: the data-bin and its dictionaries' hashes.

The recipes write the record next to the checkpoints; evaluation refuses a checkpoint whose
dictionaries differ from the corpus it is asked to translate.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from stk_nmt.files import file_sha256, read_json, write_json

# Written by the recipes next to the checkpoints: the data-bin and its dictionaries' hashes.
TRAINING_DATA_RECORD = "training-data.json"


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
