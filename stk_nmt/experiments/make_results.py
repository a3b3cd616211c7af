"""Regenerate docs/results.md and docs/img/*.png: run every example, then write the page.

    python examples/make_results.py                    # quick mode, results in results/quick
    python examples/make_results.py --mode full        # the paper's protocol (the page states run times)
    python examples/make_results.py --no-run           # re-render from results already in --out

The page also reports the full-protocol logistic grid found in --full-logistic (default
results/full-logistic), complete or partial. That grid takes longer than a working session, so it runs
in the background and keeps each finished repeat in a committed archive, from which any machine resumes:

    python examples/binary_classification.py --mode full --losses logistic --out results/full-logistic \
        --cell-archive docs/results-cells/full-logistic/full-seed0 --workers 2

Table 2 and Figure 4 come from the full-mode Gaussian runs in --gaussian-full (default
results/gaussian-full, and results/gaussian-full-p1000 for the patience-sensitivity rows), also partial,
also archived per repeat (docs/results-cells/gaussian/); the commands are in imbalance_sweep.py.

A run keeps a copy of its examples' JSON, run times and machine in docs/results-record/<mode>/
(committed), so that `--no-run` on a fresh clone, where results/ is empty, re-renders the same page
from that record and the archives.

Examples run in this process, one after the other, with the same --seed; a rerun resumes the
tabular tables from their finished cells. Each example takes a lock in --out while it runs: two
runs of one example into the same --out are refused (two runs of different examples, --only, are not).
"""

import importlib
import os
import shutil
import time
from pathlib import Path
from typing import Optional

from stk_nmt.files import locked_folder

from .cell_archive import unpack
from .cli import base_parser, start
from . import binary_classification, imbalance_sweep
from .datasets import CLASSIFICATION
from .files import atomic_write_text, read_json, write_json
from .provenance import cell_provenance
from .report import render_page
from .table_runs import MODES, run_table
from .tabular import METHODS

# Each is examples/<name>.py, a thin caller of stk_nmt.experiments.<name>.main.
EXAMPLES = ("synthetic_2d", "imbalance_sweep", "binary_classification", "regression", "timing")
# The examples that train a grid of cells and take --workers.
TABLE_EXAMPLES = ("binary_classification", "regression")


def example_main(name: str):
    """main() of the experiment behind examples/<name>.py."""
    return importlib.import_module(f"{__package__}.{name}").main


def full_logistic_summary(out: Path, seed: int):
    """The finished cells of the full-mode logistic grid in `out` (None when there are none)."""
    if not (out / "cells" / f"full-seed{seed}").is_dir():
        return None
    summary = run_table("binary_classification", "classification", binary_classification.load, CLASSIFICATION,
                        ["logistic"], METHODS, "full", MODES["full"][2], seed, out, train=False,
                        common_repeats=True)
    if summary["cells_done"] == 0:
        return None
    summary["selected_capped"] = sum(r["selected_hit_epoch_cap"] for r in summary["rows"])
    cells = [read_json(path) for path in (out / "cells" / f"full-seed{seed}").glob("*.json")]
    per_repeat = {}
    for cell in cells:
        per_repeat[cell["repeat"]] = per_repeat.get(cell["repeat"], 0.0) + cell["seconds"]
    if per_repeat:
        lo, hi = min(per_repeat, key=per_repeat.get), max(per_repeat, key=per_repeat.get)
        summary["repeat_seconds"] = {"min": per_repeat[lo], "argmin": lo, "max": per_repeat[hi], "argmax": hi}
        summary["provenance"] = cell_provenance(cells)
    return summary


def gaussian_full_summary(out: Path, archive: Path, seed: int, patience: Optional[int] = None) -> Optional[dict]:
    """imbalance_sweep's full-mode summary of the repeats archived in `archive` (and any finished in
    `out`), training nothing; None when no repeat is whole. patience: the sensitivity run's window."""
    tag = "" if patience is None else f"-p{patience}"
    folder = Path(archive) / f"full{tag}-seed{seed}"
    if not folder.is_dir() and not (Path(out) / "cells").is_dir():
        return None
    argv = ["--mode", "full", "--seed", str(seed), "--out", str(out), "--summarize-only"]
    if folder.is_dir():
        argv += ["--cell-archive", str(folder)]
    if patience is not None:
        argv += ["--patience", str(patience), "--no-figure4"]
    result = imbalance_sweep.main(argv)
    return result if result["repeats_done"] else None


def keep_record(out: Path, record: Path) -> None:
    """Copy the run's examples' JSON, run times and machine into `record` (committed: small files from
    which the page re-renders without the ignored results/ folder)."""
    record.mkdir(parents=True, exist_ok=True)
    for name in [*(f"{n}.json" for n in EXAMPLES), "runtimes.json", "machine.json"]:
        if (out / name).is_file():
            shutil.copyfile(out / name, record / name)


def main(argv=None, root: Optional[Path] = None) -> Path:
    """root: where the default docs/ and results/ are (examples/make_results.py passes the
    repository; default the current directory)."""
    root = Path.cwd() if root is None else Path(root)
    parser = base_parser(__doc__)
    parser.set_defaults(out=None)
    parser.add_argument("--no-run", action="store_true", help="only re-render the page from existing results")
    parser.add_argument("--only", nargs="+", choices=EXAMPLES, default=list(EXAMPLES), help="examples to run")
    parser.add_argument("--workers", type=int, default=1,
                        help="cells the tabular examples train at once, one process each (default 1)")
    parser.add_argument("--docs", default=str(root / "docs"), help="where results.md and img/ go (default docs/)")
    parser.add_argument("--full-logistic", default=str(root / "results" / "full-logistic"),
                        help="--out of the full-mode logistic grid to report (partial is fine; default "
                             "results/full-logistic); 'none' leaves it out")
    parser.add_argument("--full-logistic-archive", type=Path,
                        default=root / "docs" / "results-cells" / "full-logistic",
                        help="per-repeat archives of that grid's cells (default docs/results-cells/full-logistic, "
                             "committed so that the grid resumes on another machine): unpacked into "
                             "--full-logistic before the page is written")
    parser.add_argument("--gaussian-full", default=str(root / "results" / "gaussian-full"),
                        help="--out of the full-mode Gaussian run (Table 2, Figure 4) to report, partial is fine "
                             "(default results/gaussian-full; its sensitivity run is that path + "
                             f"-p{imbalance_sweep.SENSITIVITY_PATIENCE}); 'none' reports the --mode run's own")
    parser.add_argument("--gaussian-archive", type=Path, default=root / "docs" / "results-cells" / "gaussian",
                        help="per-repeat archives of those runs (default docs/results-cells/gaussian)")
    parser.add_argument("--record", type=Path,
                        help="where a run keeps a copy of its examples' JSON, run times and machine "
                             "(committed), from which --no-run re-renders the page on a fresh clone "
                             "(default <docs>/results-record; <record>/<mode>/)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(root / "results" / args.mode)
    out = start(args)
    runtimes_path = out / "runtimes.json"
    runtimes = read_json(runtimes_path) if runtimes_path.is_file() else {}
    machine_path = out / "machine.json"
    if not args.no_run:
        # What the page says about the machine comes from the run, not from the template.
        write_json(machine_path, {"cpu_count": os.cpu_count(), "nice": os.nice(0),
                                  "load_average_1min": os.getloadavg()[0]})
        for name in args.only:
            print(f"\n=== {name} ({args.mode}) ===", flush=True)
            t0 = time.perf_counter()
            workers = ["--workers", str(args.workers)] if name in TABLE_EXAMPLES else []
            with locked_folder(out, f"make_results running {name}", f".stk-lock.{name}"):
                example_main(name)(["--mode", args.mode, "--seed", str(args.seed), "--out", str(out), *workers])
            runtimes[name] = time.perf_counter() - t0
            # Re-read before writing: another make_results process may run other examples (--only).
            merged = read_json(runtimes_path) if runtimes_path.is_file() else {}
            merged[name] = runtimes[name]
            write_json(runtimes_path, merged)
    record = (args.record or Path(args.docs) / "results-record") / args.mode
    if any((out / f"{name}.json").is_file() for name in EXAMPLES):
        keep_record(out, record)
    elif record.is_dir():
        out = record  # a fresh clone: re-render from the committed record of the last run
        runtimes_path, machine_path = out / "runtimes.json", out / "machine.json"
    runtimes = read_json(runtimes_path) if runtimes_path.is_file() else runtimes
    results = {name: read_json(out / f"{name}.json") for name in EXAMPLES if (out / f"{name}.json").is_file()}
    if not results:
        raise FileNotFoundError(f"no example results in --out={str(out)!r} nor in --record={str(record)!r}: "
                                "run without --no-run first")
    docs = Path(args.docs)
    (docs / "img").mkdir(parents=True, exist_ok=True)
    for name in results:
        if (out / f"{name}.png").is_file():  # a record keeps no figures: docs/img/ has the last run's
            shutil.copyfile(out / f"{name}.png", docs / "img" / f"{name}.png")
    gaussian = sensitivity = None
    if args.gaussian_full != "none":
        gaussian = gaussian_full_summary(Path(args.gaussian_full), args.gaussian_archive, args.seed)
        sensitivity = gaussian_full_summary(Path(f"{args.gaussian_full}-p{imbalance_sweep.SENSITIVITY_PATIENCE}"),
                                            args.gaussian_archive, args.seed, imbalance_sweep.SENSITIVITY_PATIENCE)
        if gaussian:
            shutil.copyfile(Path(args.gaussian_full) / "imbalance_sweep.png", docs / "img" / "imbalance_sweep.png")
    page = docs / "results.md"
    full = None
    if args.full_logistic != "none":
        if (args.full_logistic_archive / f"full-seed{args.seed}").is_dir():
            unpack(args.full_logistic_archive / f"full-seed{args.seed}",
                   Path(args.full_logistic) / "cells" / f"full-seed{args.seed}")
        full = full_logistic_summary(Path(args.full_logistic), args.seed)
    total = sum(runtimes.get(name, 0.0) for name in EXAMPLES)
    machine = read_json(machine_path) if machine_path.is_file() else None
    atomic_write_text(page, render_page(results, runtimes, args.mode, args.seed, full_logistic=full,
                                        total_seconds=total or None, machine=machine,
                                        gaussian_full=gaussian, gaussian_sensitivity=sensitivity))
    print(f"wrote {page} and {len(results)} figures in {docs / 'img'}")
    return page


if __name__ == "__main__":
    main()
