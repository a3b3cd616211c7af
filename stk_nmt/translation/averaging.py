"""Checkpoint averaging, as fairseq's scripts/average_checkpoints.py does.

That script lives in fairseq's source tree but is not part of the installed package, hence this
small equivalent: the model parameters of the last N checkpoints are averaged (in float64, cast
back), everything else (config, criterion state such as STk's lam) is taken from the newest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from stk_nmt.files import atomic_write

from .resume import unreadable_reason

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
    # torch.load of a torn file fails with a bare OSError or RuntimeError naming no file: check
    # every input first (a zip test, not a full load) and name the one that is torn.
    for path in paths:
        reason = unreadable_reason(Path(path))
        if reason is not None:
            raise ValueError(
                f"cannot average {len(paths)} checkpoints: {path} is unreadable ({reason}), e.g. cut short by a "
                f"kill or a full disk while it was written; move it out of {Path(path).parent} and average the "
                f"remaining ones (a smaller --average-last), or retrain to rewrite it")
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
