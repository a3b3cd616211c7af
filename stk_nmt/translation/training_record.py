"""Which data a save dir's checkpoints were trained on: the data-bin and its dictionaries' hashes.

The recipes write the record next to the checkpoints when they train from scratch; evaluation
refuses a checkpoint whose dictionaries differ from the corpus it is asked to translate. The record
also holds the hashes of the data-bin's data files and the training flags: a resumed run is checked
against them (resume_changes) and never rewrites the record of checkpoints it did not start.
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


def data_hashes(data_bin: Path) -> dict[str, str]:
    """SHA-256 of each binarised split (*.bin, *.idx) of a data-bin: what the model learns from.

    Hashing a WMT-sized data-bin takes seconds, against hours of training; sizes alone would miss
    a corpus re-prepared with the same sentence lengths."""
    return {p.name: file_sha256(p) for p in sorted(Path(data_bin).iterdir())
            if p.is_file() and p.suffix in (".bin", ".idx")}


# fairseq-train flags that set how long, from where or how verbosely a run goes, not what it learns:
# a resume may change them (a longer budget is the usual reason to resume). True: takes a value.
_RESUME_FREE_FLAGS = {"--max-epoch": True, "--max-update": True, "--restore-file": True, "--save-dir": True,
                      "--user-dir": True, "--log-interval": True, "--log-format": True, "--num-workers": True,
                      "--no-progress-bar": False, "--tensorboard-logdir": True}


def training_settings(train_args: list[str]) -> list[str]:
    """The fairseq-train arguments that shape the model: all but the data-bin (compared by its
    hashes) and _RESUME_FREE_FLAGS."""
    settings, i = [], 1  # train_args[0] is the data-bin
    while i < len(train_args):
        flag, _, inline = train_args[i].partition("=")
        if flag in _RESUME_FREE_FLAGS:
            i += 1 + (_RESUME_FREE_FLAGS[flag] and not inline)
            continue
        settings.append(train_args[i])
        i += 1
    return settings


def training_record(data_bin: Path, train_args: list[str]) -> dict:
    return {"data_bin": str(Path(data_bin).resolve()), "dictionaries": dictionary_hashes(data_bin),
            "data": data_hashes(data_bin), "settings": training_settings(train_args)}


def record_training_data(save_dir: Path, data_bin: Path, train_args: list[str] | None = None) -> Path:
    """Writes the record of a run that starts from scratch (train_args: its fairseq-train arguments)."""
    record = training_record(data_bin, train_args) if train_args is not None else {
        "data_bin": str(Path(data_bin).resolve()), "dictionaries": dictionary_hashes(data_bin)}
    return write_json(Path(save_dir) / TRAINING_DATA_RECORD, record, indent=1)


def _flag_values(args: list[str]) -> dict[str, tuple[str, ...]]:
    """{--flag: (its values...)}: the words after a flag up to the next --flag are its values."""
    values: dict[str, tuple[str, ...]] = {}
    flag = None
    for word in args:
        if word.startswith("--"):
            flag, _, inline = word.partition("=")
            values[flag] = (inline,) if inline else ()
        elif flag is not None:
            values[flag] += (word,)
    return values


def resume_changes(record: dict, current: dict) -> tuple[list[str], list[str]]:
    """(dictionary files that differ, other differences) between a save dir's training record and
    the run about to resume it; a key an older record lacks is not compared."""
    dictionaries = sorted(name for name in set(record["dictionaries"]) | set(current["dictionaries"])
                          if record["dictionaries"].get(name) != current["dictionaries"].get(name))
    others = []
    if "data" in record and record["data"] != current["data"]:
        differ = sorted(name for name in set(record["data"]) | set(current["data"])
                        if record["data"].get(name) != current["data"].get(name))
        others.append(f"the data differs ({', '.join(differ[:6])}{' ...' if len(differ) > 6 else ''} of "
                      f"{record['data_bin']} vs {current['data_bin']})")
    old, new = _flag_values(record.get("settings", [])), _flag_values(current["settings"])
    if "settings" in record and old != new:  # as fairseq reads them: a flag given twice takes the last value
        def shown(values: dict, flag: str) -> str:
            return "(not given)" if flag not in values else " ".join(values[flag]) or "(given)"

        differ = [f"{flag} {shown(old, flag)} -> {shown(new, flag)}"
                  for flag in dict.fromkeys([*old, *new]) if old.get(flag) != new.get(flag)]
        others.append(f"the training flags differ ({'; '.join(differ)})")
    return dictionaries, others


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
