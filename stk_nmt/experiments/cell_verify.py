"""Retrain archived cells of a tabular grid and compare them with the archive, value for value.

A cell (one dataset, loss, aggregate and repeat, with its whole hyper-parameter grid) is a pure
function of the code, the data and the seed, computed on one thread. Retraining a few archived
cells therefore tells whether the code still computes what the archive holds: after a move of code,
every number must come back bit for bit, on a host whose CPU runs torch's same vectorised kernels
(the cell's recorded `host`, stk_nmt/host.py: another instruction set rounds differently, and a
changed last bit can move early stopping). Only the wall-clock `seconds`, the `host` and the `code`
may differ.

    python -m stk_nmt.experiments.cell_verify --archive docs/results-cells/full-logistic/full-seed0 \\
        --repeat 49 --cells australian__logistic__stk wisconsin__logistic__atk german__logistic__matk \\
        titanic__logistic__maximum

Exit status 0 when every cell matches, 1 otherwise (the first differing field of each is printed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from ..host import describe_host
from .binary_classification import load as load_classification
from .cell_archive import archive_path, read_cells
from .datasets import load_regression
from .table_runs import CellJob, train_cell
from .tabular import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

SEED_FROM_FOLDER = re.compile(r"-seed(?P<seed>\d+)$")
IGNORED = ("seconds", "host", "code")  # time, where and by what it ran: a retrained cell may change these


def first_difference(archived, retrained, where: str = "") -> Optional[str]:
    """Where two JSON values first differ (exact comparison, floats included), or None."""
    if type(archived) is not type(retrained):
        return f"{where or 'cell'}: {archived!r} (archived) vs {retrained!r} (retrained)"
    if isinstance(archived, dict):
        for key in sorted(set(archived) | set(retrained)):
            if key in IGNORED and not where:
                continue
            if key not in archived or key not in retrained:
                return f"{where}.{key}: present in only one of them"
            found = first_difference(archived[key], retrained[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(archived, list):
        if len(archived) != len(retrained):
            return f"{where}: {len(archived)} items (archived) vs {len(retrained)} (retrained)"
        for i, (a, r) in enumerate(zip(archived, retrained)):
            found = first_difference(a, r, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if archived == retrained else f"{where}: {archived!r} (archived) vs {retrained!r} (retrained)"


def task_of(loss: str) -> str:
    if loss in CLASSIFICATION_LOSSES:
        return "classification"
    if loss in REGRESSION_LOSSES:
        return "regression"
    raise ValueError(f"cell loss {loss!r} is neither a classification loss {CLASSIFICATION_LOSSES} "
                     f"nor a regression loss {REGRESSION_LOSSES}")


def verify(archive_dir: Path, repeat: int, stems: Sequence[str], seed: int, progress: bool = False,
           keep: Optional[Path] = None) -> List[tuple]:
    """[(stem, difference or None)] for each named cell of repeat `repeat`, retrained from scratch;
    the retrained cells are written into `keep` when given (to compare two versions of the code)."""
    archive = archive_path(archive_dir, repeat)
    if not archive.is_file():
        raise ValueError(f"--repeat {repeat}: no archive {archive}")
    cells = {name: json.loads(text) for name, text, _ in read_cells(archive)}
    torch.set_num_threads(1)  # as the grid's worker processes ran (table_runs._worker_init)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(keep) if keep is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            name = f"{stem}__{repeat}.json"
            if name not in cells:
                known = sorted(n.rsplit("__", 1)[0] for n in cells)
                raise ValueError(f"--cells {stem}: not in {archive}; it holds {', '.join(known)}")
            archived = cells[name]
            task = task_of(archived["loss"])
            load = load_classification if task == "classification" else load_regression
            job = CellJob(load, task, archived["dataset"], archived["loss"], archived["method"], repeat,
                          archived["mode"], seed, out / name)
            retrained = json.loads(train_cell(job, progress=progress).read_text())
            results.append((stem, first_difference(archived, retrained)))
    return results


def host_note(archive_dir: Path, repeat: int) -> str:
    """Whether the archived cells were computed with this host's vectorised kernels (bit for bit
    is expected only then)."""
    here = describe_host()["cpu_capability"]
    archived = {cell.get("host", {}).get("cpu_capability") for _, text, _ in read_cells(archive_path(archive_dir, repeat))
                for cell in [json.loads(text)]}
    if archived == {here}:
        return f"torch CPU capability {here}, as the archived cells record: bit for bit is expected"
    if archived == {None}:
        return (f"torch CPU capability {here} here; the archive does not record its host's, and another "
                f"instruction set rounds differently (stk_nmt/host.py)")
    known = ", ".join(sorted(str(c) for c in archived))
    return (f"torch CPU capability {here} here, {known} in the archive: last-bit differences are expected "
            f"(ATEN_CPU_CAPABILITY=<capability> selects a lower instruction set than the CPU's)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True, type=Path, help="a folder of repeat-NNN.tar.xz cell archives")
    parser.add_argument("--repeat", required=True, type=int, help="the repeat whose cells are retrained")
    parser.add_argument("--cells", required=True, nargs="+", help="cells as dataset__loss__aggregate")
    parser.add_argument("--seed", type=int,
                        help="the run's --seed (default: read from the archive folder's name, ...-seed<N>)")
    parser.add_argument("--keep", type=Path, help="write the retrained cells into this folder")
    args = parser.parse_args(argv)
    seed = args.seed
    if seed is None:
        match = SEED_FROM_FOLDER.search(args.archive.resolve().name)
        if not match:
            parser.error(f"--archive {args.archive}: its name does not end in -seed<N>; give --seed")
        seed = int(match["seed"])
    try:
        results = verify(args.archive, args.repeat, args.cells, seed, keep=args.keep)
    except ValueError as error:
        parser.error(str(error))
    print(host_note(args.archive, args.repeat))
    for stem, difference in results:
        print(f"{stem}__{args.repeat}: " + ("identical (every value bit for bit; seconds ignored)" if difference is None
                                           else f"DIFFERS at {difference}"))
    return 0 if all(d is None for _, d in results) else 1


if __name__ == "__main__":
    sys.exit(main())
