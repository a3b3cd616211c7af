"""Run a tabular table (datasets x individual losses x aggregates x repeats), resumably.

Every finished cell (dataset, loss, method, repeat) is written at once to <out>/cells/ as JSON, so
a stopped run resumes where it was; the summary (CSV + JSON: mean +- std over repeats of the test
metric of the configuration selected on validation) is rebuilt from the cells at the end.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from tabulate import tabulate
from tqdm.auto import tqdm

from ..files import locked_folder
from ..host import describe_code, describe_host
from ..processes import die_with_parent
from .cell_archive import pack, unpack
from .cli import base_parser, start, write_results
from .datasets import Dataset, split_standardize
from .figures import png_figure
from .files import read_json, write_json
from .tabular import METHOD_LABELS, grid, select, train_grid

# Per mode: maximum epochs, early-stopping patience (validation checks, one per epoch), default
# repeats, cap on training examples. full is the paper's protocol (50 repeats; stop when the
# validation gain stays below 1e-6 for 50 checks, roll back to the best) with a 200-epoch cap the
# paper does not have; quick cuts repeats to 3, patience to 5, epochs to 20 and the grid (tabular.GRIDS);
# smoke also trains on a 160-example subsample so that the tests take seconds.
MODES = {"full": (200, 50, 50, None), "quick": (20, 5, 3, None), "smoke": (2, 2, 1, 160)}
MIN_GAIN = 1e-6  # the paper's threshold on the validation gain
# The stds the tables print are population stds over the repeats (numpy's default); the paper does not
# say which it prints. The results page states this from here.
STD_DDOF = 0


def run_table(
    name: str,
    task: str,
    load: Callable[[str, int], Dataset],
    datasets: Sequence[str],
    losses: Sequence[str],
    methods: Sequence[str],
    mode: str,
    repeats: int,
    seed: int,
    out: Path,
    extra: Optional[dict] = None,
    train: bool = True,
    common_repeats: bool = False,
    archive: Optional[Path] = None,
    workers: int = 1,
) -> dict:
    """Train every missing cell (unless train=False: then only summarise the finished ones, which is
    how a partial, still-running or stopped run is reported), then write <out>/<name>.{json,csv}.

    archive: a folder of per-repeat cell archives (cell_archive): its cells are unpacked before the
    run, so that a run resumes from archives made on another machine, and every repeat that finishes
    is packed there. workers: cells trained at once, each in its own process (one thread each).
    Training takes the cells folder's lock: a second run on the same cells is refused (FolderInUse);
    summarising only (train=False) takes none, so a running grid can be reported."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got workers={workers!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {tuple(MODES)}, got mode={mode!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got repeats={repeats}")
    max_epochs, patience, _, max_train = MODES[mode]
    cells_dir = out / "cells" / f"{mode}-seed{seed}"
    # Repeat-major: a stopped run leaves whole repeats of every dataset, not all repeats of a few.
    jobs = [(d, l, m, r) for r in range(repeats) for d in datasets for l in losses for m in methods]
    stems = [f"{d}__{l}__{m}" for d in datasets for l in losses for m in methods]
    # The lock file sits next to the cells folder, not in it (cell archives pack that folder).
    with locked_folder(cells_dir.parent, f"training the {name} grid", f".{cells_dir.name}.lock", take=train):
        if archive is not None and Path(archive).is_dir():
            unpack(archive, cells_dir)
        start = time.perf_counter()
        shapes: Dict[str, list] = {}
        todo = [CellJob(load, task, d, l, m, r, mode, seed, cells_dir / f"{d}__{l}__{m}__{r}.json")
                for d, l, m, r in jobs if not (cells_dir / f"{d}__{l}__{m}__{r}.json").is_file()]
        if train and todo:
            bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=name, unit="cell")
            for _ in run_cells(todo, workers):
                bar.update()
                if archive is not None:
                    pack(cells_dir, archive, stems=stems)
            bar.close()
        summary = summarize(cells_dir, datasets, losses, methods, repeats, common_repeats=common_repeats)
        for d in datasets:
            data = load(d, seed)
            shapes[d] = [int(data.X.shape[0]), int(data.n_attributes), int(data.X.shape[1])]
        summary.update({"table": name, "task": task, "mode": mode, "seed": seed, "repeats": repeats,
                        "max_epochs": max_epochs, "patience": patience, "min_gain": MIN_GAIN, "max_train": max_train,
                        "grid_sizes": {m: len(grid(m, mode)) for m in methods},
                        "shapes": shapes, "elapsed_s_this_run": time.perf_counter() - start, **(extra or {})})
        write_results(out, name, summary, summary["rows"])
        return summary


class CellJob(NamedTuple):
    """One cell to train and write: everything a worker process needs (load is a module-level function)."""

    load: Callable[[str, int], Dataset]
    task: str
    dataset: str
    loss: str
    method: str
    repeat: int
    mode: str
    seed: int
    path: Path


@functools.lru_cache(maxsize=4)
def _load_cached(load: Callable[[str, int], Dataset], dataset: str, seed: int) -> Dataset:
    return load(dataset, seed)


def train_cell(job: CellJob, progress: bool = True) -> Path:
    """Train one cell's grid, select its configuration and write the cell file (atomically)."""
    max_epochs, patience, _, max_train = MODES[job.mode]
    r = job.repeat
    # Regression data may depend on the repeat (sinc is resampled); classification data do not.
    data = _load_cached(job.load, job.dataset, job.seed + r if job.task == "regression" else job.seed)
    split = split_standardize(data, seed=job.seed + r)
    if max_train is not None:
        split.X_train, split.y_train = split.X_train[:max_train], split.y_train[:max_train]
    t0 = time.perf_counter()
    results = train_grid(split, job.loss, job.method, grid(job.method, job.mode), job.task, seed=job.seed + r,
                         max_epochs=max_epochs, patience=patience, min_gain=MIN_GAIN, progress=progress)
    write_json(job.path, {"dataset": job.dataset, "loss": job.loss, "method": job.method, "repeat": r,
                          "mode": job.mode, "seconds": time.perf_counter() - t0, "selected": select(results),
                          "grid": results, "host": describe_host(), "code": describe_code()})
    return job.path


def _worker_init(parent_pid: int) -> None:
    torch.set_num_threads(1)  # the cells' ops are too small to split; one process per core instead
    die_with_parent(parent_pid)  # `kill` of a background run ends its workers too (finished cells stay whole)


def _train_cell_quietly(job: CellJob) -> Path:
    return train_cell(job, progress=False)


def run_cells(jobs: Sequence[CellJob], workers: int) -> Iterator[Path]:
    """Train the cells, yielding each finished cell's path. workers > 1: a pool of spawned processes,
    in job order (repeat-major); an interrupt cancels the rest, and finished cells stay written."""
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            yield train_cell(job)
        return
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_train_cell_quietly, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def select_over_repeats(grids: List[List[dict]]) -> int:
    """The paper's selection: the configuration (grid index) with the best validation metric averaged
    over the repeats (ties: mean validation loss, then grid order). A diverged run counts as inf."""
    def finite(x):
        return x if np.isfinite(x) else np.inf

    val = np.array([[finite(c["val"]) for c in g] for g in grids]).mean(0)
    loss = np.array([[finite(c["val_loss"]) for c in g] for g in grids]).mean(0)
    return int(np.lexsort((loss, val))[0])


def summarize(cells_dir: Path, datasets, losses, methods, repeats, common_repeats: bool = False) -> dict:
    """Test mean +- std over the repeats whose cell is finished, of the configuration selected as the
    paper does: one configuration per (dataset, loss, method), the best by validation metric averaged
    over the repeats (`mean`, `std`; `tests` and `repeats` list its test metric on each finished repeat,
    for paired comparisons). `per_split_mean` is the alternative of selecting anew on each split.
    A stopped run gives a partial summary (each row says how many repeats it has);
    common_repeats=True keeps only the repeats every method of a dataset has finished, so that the
    aggregates of a partial run are compared on the same splits."""
    rows, cell_seconds, done, finished, first, last = [], 0.0, 0, 0, float("inf"), 0.0
    for d in datasets:
        for l in losses:
            for m in methods:
                cells = []
                for r in range(repeats):
                    path = cells_dir / f"{d}__{l}__{m}__{r}.json"
                    if not path.is_file():
                        continue
                    finished += 1
                    if common_repeats and not all((cells_dir / f"{d}__{l}__{o}__{r}.json").is_file() for o in methods):
                        continue
                    cell = read_json(path)
                    cells.append(cell)
                    cell_seconds += cell["seconds"]
                    mtime = path.stat().st_mtime
                    first, last = min(first, mtime - cell["seconds"]), max(last, mtime)
                done += len(cells)
                row = {"dataset": d, "loss": l, "method": m, "label": METHOD_LABELS[m], "mean": float("nan"),
                       "std": float("nan"), "n_repeats": len(cells), "selected_hit_epoch_cap": 0,
                       "per_split_mean": float("nan"), "selected": None, "tests": [], "repeats": []}
                if cells:
                    i = select_over_repeats([c["grid"] for c in cells])
                    tests = [c["grid"][i]["test"] for c in cells]
                    row.update(mean=float(np.mean(tests)), std=float(np.std(tests, ddof=STD_DDOF)),
                               selected_hit_epoch_cap=sum(not c["grid"][i].get("stopped_early", True) for c in cells),
                               per_split_mean=float(np.mean([c["selected"]["test"] for c in cells])),
                               selected={k: cells[0]["grid"][i][k] for k in ("k", "C", "lr", "delta")},
                               tests=[float(t) for t in tests], repeats=[int(c["repeat"]) for c in cells])
                rows.append(row)
    total = len(datasets) * len(losses) * len(methods) * repeats
    return {"rows": rows, "training_seconds": cell_seconds, "cells_done": done, "cells_finished": finished,
            "cells_total": total,
            "complete": done == total, "wall_seconds_cells": max(0.0, last - first) if done else 0.0,
            "selection": "one configuration per dataset, loss and method: best mean validation metric over repeats"}


def plot_table(summary: dict, path: Path, metric: str) -> None:
    """One panel per individual loss: mean +- std per dataset and aggregate (grouped bars)."""
    rows = summary["rows"]
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    with png_figure(path, 1, len(losses), figsize=(4.5 * len(losses), 3.2), squeeze=False) as (fig, axes):
        width = 0.8 / len(methods)
        for ax, loss in zip(axes[0], losses):
            for j, m in enumerate(methods):
                sel = [next(r for r in rows if (r["dataset"], r["loss"], r["method"]) == (d, loss, m))
                       for d in datasets]
                x = np.arange(len(datasets)) + (j - (len(methods) - 1) / 2) * width
                ax.bar(x, [r["mean"] for r in sel], width, yerr=[r["std"] for r in sel], label=METHOD_LABELS[m],
                       capsize=2)
            ax.set_xticks(np.arange(len(datasets)))
            ax.set_xticklabels(datasets, rotation=30, fontsize=8)
            ax.set_title(f"{loss} loss ({summary['mode']} mode)", fontsize=9)
            ax.set_ylabel(metric, fontsize=8)
        axes[0][0].legend(fontsize=7)


def table_main(argv, description: str, name: str, task: str, load: Callable[[str, int], Dataset],
               datasets: Sequence[str], losses: Sequence[str], methods: Sequence[str],
               default_methods: Sequence[str], metric: str, digits: int, extra: Optional[dict] = None,
               notes: Sequence[str] = ()) -> dict:
    """The command line of a table example: parse, run (or only summarise) the table, plot, print."""
    parser = base_parser(description)
    parser.add_argument("--datasets", nargs="+", default=list(datasets), choices=datasets)
    parser.add_argument("--losses", nargs="+", default=list(losses), choices=losses)
    parser.add_argument("--methods", nargs="+", default=list(default_methods), choices=methods)
    parser.add_argument("--repeats", type=int, help="random splits (default: 50 full, 3 quick, 1 smoke)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="train nothing: summarise the finished cells (a partial or running full grid)")
    parser.add_argument("--workers", type=int, default=1,
                        help="cells trained at once, one process (one thread) each (default 1); a full grid on "
                             "a machine of N cores: --workers N")
    parser.add_argument("--cell-archive", type=Path,
                        help="folder of per-repeat cell archives: unpacked before the run (resume from another "
                             "machine), and each finished repeat is packed there (see stk_nmt.experiments.cell_archive)")
    args = parser.parse_args(argv)
    out = start(args)
    for note in notes:
        print(note)
    repeats = args.repeats if args.repeats is not None else MODES[args.mode][2]
    summary = run_table(name, task, load, args.datasets, args.losses, args.methods, args.mode, repeats, args.seed,
                        out, extra=extra, train=not args.summarize_only, archive=args.cell_archive,
                        workers=args.workers)
    plot_table(summary, out / f"{name}.png", metric)
    print(tabulate([[r["dataset"], r["loss"], r["label"], f"{r['mean']:.{digits}f} +- {r['std']:.{digits}f}"]
                    for r in summary["rows"]], headers=["dataset", "loss", "method", metric], disable_numparse=True))
    print(f"{summary['cells_done']} of {summary['cells_total']} cells; training time "
          f"{summary['training_seconds']:.0f} s (all finished cells); results in {out}")
    return summary
