"""The d = 200 Gaussian experiment (STk paper, Table 2 and Figure 4): accuracy and ParaF1.

    python examples/imbalance_sweep.py --out results                    # quick: 2 repeats
    python examples/imbalance_sweep.py --mode full --out results        # the paper's 50 repeats

Sparse logistic regression (binary cross-entropy aggregated by each method, plus an l1 term) on two
Gaussians in d = 200 whose means differ in the first 10 coordinates (gaussian.py states the setup
and the choices the paper leaves open). ParaF1 is the F1 of the recovered support
{j : |w_j| > 0.01} against the first 10 coordinates.
- Table 2: Average, Maximum, AT_k, MAT_k and ST_k with the ELU, SoftPlus, Leaky-ReLU and SReLU
  smoothers, train negatives 20% (positives:negatives 8:2).
- Figure 4: ST_k (SReLU), AT_k and Average at negative ratios 0.5, 0.1, 0.05, 0.01, 0.005, 0.001.
Both: 10,000 / 2,500 / 2,500 points, validation and test balanced, Adam (defaults), batch 512,
early stop when validation accuracy gains less than 1e-4 in 200 optimizer steps, rollback to the best
check (gaussian.StepStopping counts the window in optimizer steps). Modes: full = 50 repeats, at most
20,000 steps, validation checked after every step (the paper's rule as stated); quick = 2 repeats, at
most 5,000 steps, validation checked every 10 steps; smoke = 1 repeat on 400 / 100 / 100 points, 20
steps, patience 10. --patience N changes the window (the page's sensitivity row) and keeps its cells
apart. Each (method, ratio, repeat) is saved under <out>/cells/ and a rerun resumes; --cell-archive
keeps every whole repeat in a committed archive (cell_archive.py), from which another machine
resumes. The full run takes hours on 2 cores, so it runs in the background:

    nice -n 19 python examples/imbalance_sweep.py --mode full --out results/gaussian-full \
        --cell-archive docs/results-cells/gaussian/full-seed0
    nice -n 19 python examples/imbalance_sweep.py --mode full --patience 1000 --no-figure4 \
        --out results/gaussian-full-p1000 --cell-archive docs/results-cells/gaussian/full-p1000-seed0

Only repeats whose every cell is finished are summarised. Writes <out>/imbalance_sweep.{json,csv,png}.
"""

import time
from pathlib import Path

import numpy as np
from tabulate import tabulate
from tqdm.auto import tqdm

from . import gaussian as g
from .cell_archive import pack, unpack
from .cli import base_parser, start, write_results
from .figures import png_figure
from .files import read_json, write_json
from ..host import describe_code, describe_host
from .provenance import cell_provenance
from .paper import FIGURE4_READ

TABLE2_RATIO = 0.2  # train positives:negatives 8:2
SENSITIVITY_PATIENCE = 1000  # the results page's longer window (optimizer steps), 5x the paper's 200
# (repeats, (n_train, n_val, n_test), max Adam steps, patience in steps, validation check every N steps)
MODES = {"full": (50, (10_000, 2_500, 2_500), 20_000, 200, 1), "quick": (2, (10_000, 2_500, 2_500), 5_000, 200, 10),
         "smoke": (1, (400, 100, 100), 20, 10, 1)}


def plot(rows, path):
    with png_figure(path, 1, 2, figsize=(8.5, 3.2)) as (fig, axes):
        for ax, metric, label in zip(axes, ("accuracy", "para_f1"), ("test accuracy (%)", "ParaF1")):
            for i, m in enumerate(g.FIGURE4_METHODS):
                sel = sorted((r for r in rows if r["method"] == m), key=lambda r: -r["neg_ratio"])
                if not sel:
                    continue
                x = [r["neg_ratio"] for r in sel]
                mean = np.array([r[f"{metric}_mean"] for r in sel])
                std = np.array([r[f"{metric}_std"] for r in sel])
                line, = ax.plot(x, mean, marker="o", ms=3, label=f"{g.TABLE2_METHODS[m][0]} (ours)")
                ax.fill_between(x, mean - std, mean + std, alpha=0.15, color=line.get_color())
                paper = FIGURE4_READ[metric].get(m)
                if paper:
                    ax.plot(g.FIGURE4_RATIOS, paper, ls=":", marker="x", ms=3, color=line.get_color(),
                            label=f"{g.TABLE2_METHODS[m][0]} (paper, read off)")
            ax.set_xscale("log")
            ax.invert_xaxis()
            ax.set_xlabel("negative-sample ratio (train)", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
        axes[1].legend(fontsize=6)


def cells_folder(out, mode: str, seed: int, patience: int):
    """<out>/cells/gaussian-<mode>[-p<patience>]-seed<seed>: a patience other than the mode's own
    (the sensitivity run) keeps its cells apart."""
    tag = "" if patience == MODES[mode][3] else f"-p{patience}"
    return out / "cells" / f"gaussian-{mode}{tag}-seed{seed}"


def whole_repeats(cells_dir, stems, repeats):
    """The repeats < `repeats` whose every cell (stem "method__ratio") is finished."""
    return [rep for rep in range(repeats) if all((cells_dir / f"{s}__{rep}.json").is_file() for s in stems)]


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--repeats", type=int, help="default: 50 full, 2 quick, 1 smoke")
    parser.add_argument("--ratios", type=float, nargs="+", default=list(g.FIGURE4_RATIOS),
                        help="Figure 4's negative-sample ratios (default: the paper's)")
    parser.add_argument("--no-table2", action="store_true", help="run Figure 4 only")
    parser.add_argument("--no-figure4", action="store_true", help="run Table 2 only")
    parser.add_argument("--patience", type=int,
                        help="early-stopping window in optimizer steps (default: the mode's, the paper's 200 in "
                             "full mode); another value keeps its cells apart (the sensitivity run)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="train nothing: summarise the repeats whose cells are all finished")
    parser.add_argument("--cell-archive", type=Path,
                        help="folder of per-repeat cell archives: unpacked before the run (resume on another "
                             "machine), and each finished repeat is packed there (stk_nmt.experiments.cell_archive)")
    args = parser.parse_args(argv)
    bad = [r for r in args.ratios if not 0 < r < 1]
    if bad:
        raise ValueError(f"--ratios must lie in (0, 1), got {bad}")
    if args.repeats is not None and args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got repeats={args.repeats}")
    if args.no_table2 and args.no_figure4:
        raise ValueError("--no-table2 and --no-figure4 leave nothing to run")
    out = start(args)
    repeats, sizes, max_steps, patience, eval_every = MODES[args.mode]
    repeats = args.repeats or repeats
    if args.patience is not None:
        if args.patience < eval_every:
            raise ValueError(f"--patience must be >= the validation interval {eval_every}, got patience={args.patience}")
        patience = args.patience
    pairs = [] if args.no_table2 else [(m, TABLE2_RATIO) for m in g.TABLE2_METHODS]
    pairs += [] if args.no_figure4 else [(m, r) for r in args.ratios for m in g.FIGURE4_METHODS]
    stems = [f"{m}__{r}" for m, r in pairs]
    jobs = [(m, r, rep) for rep in range(repeats) for m, r in pairs]  # repeat-major, as the tables
    cells_dir = cells_folder(out, args.mode, args.seed, patience)
    if args.cell_archive is not None and args.cell_archive.is_dir():
        unpack(args.cell_archive, cells_dir)
    t0 = time.perf_counter()
    todo = [(m, r, rep) for m, r, rep in jobs if not (cells_dir / f"{m}__{r}__{rep}.json").is_file()]
    if not args.summarize_only:
        for m, r, rep in tqdm(todo, desc="method x ratio x repeat"):
            cell = g.run_cell(m, r, rep, args.seed, sizes=sizes, max_steps=max_steps, patience=patience,
                              eval_every=eval_every)
            # As the tabular cells: whether two archived repeats can agree to the last bit depends on both.
            write_json(cells_dir / f"{m}__{r}__{rep}.json", {**cell, "host": describe_host(), "code": describe_code()})
            if args.cell_archive is not None:
                pack(cells_dir, args.cell_archive, stems=stems)
    # Only whole repeats: every method is compared on the same data (a stopped run leaves a partial one).
    done = whole_repeats(cells_dir, stems, repeats)
    cells = [read_json(cells_dir / f"{s}__{rep}.json") for rep in done for s in stems]
    rows = g.summarize(cells)
    table2 = [x for x in rows if x["neg_ratio"] == TABLE2_RATIO]
    figure4 = [x for x in rows if x["method"] in g.FIGURE4_METHODS and x["neg_ratio"] in args.ratios]
    print(tabulate([[x["label"], f"{x['accuracy_mean']:.2f} +- {x['accuracy_std']:.2f}", f"{x['para_f1_mean']:.4f}",
                     f"{x['seconds_mean']:.2f}"] for x in table2],
                   headers=["Table 2", "accuracy (%)", "ParaF1", "seconds"], disable_numparse=True))
    print(f"{len(done)} of {repeats} repeats whole ({len(cells)} cells)")
    bayes = g.bayes_direction()
    result = {"mode": args.mode, "seed": args.seed, "repeats": repeats, "repeats_done": len(done),
              "sizes": list(sizes), "max_steps": max_steps,
              "patience_steps": patience, "eval_every": eval_every, "min_gain": 1e-4, "k_ratio": g.K_RATIO, "l1": g.L1_WEIGHT,
              "support_tol": g.SUPPORT_TOL, "table2_ratio": TABLE2_RATIO, "table2": table2, "figure4": figure4,
              "bayes_nonzeros": int((np.abs(bayes) > 1e-9).sum()),
              "bayes_accuracy": 100.0 * g.bayes_accuracy(),
              "bayes_para_f1": g.para_f1(bayes, g.true_support()),
              "capped": sum(not c["stopped_early"] for c in cells), "cells": len(cells),
              "cell_seconds": sum(c["seconds"] for c in cells), "elapsed_s": time.perf_counter() - t0,
              "provenance": cell_provenance(cells) if cells else None}
    write_results(out, "imbalance_sweep", result, rows)
    if figure4:  # a Table 2 only run (the sensitivity run) has no figure
        plot(figure4, out / "imbalance_sweep.png")
    return result


if __name__ == "__main__":
    main()
