"""Compare aggregates (default: average vs AT_k vs ST_k) over seeds with one per-sample loss.

    python -m stk_nmt.vision.compare --out runs/vision-compare            # offline digits, IF 100
    python -m stk_nmt.vision.compare --out runs/c100 -- --dataset cifar100-lt --data-dir data --epochs 200

Arguments after "--" go to every training run (python -m stk_nmt.vision.train). Each run lives in
<out>/<aggregate>-seed<seed>/ and resumes if interrupted; finished runs are not repeated. Writes
<out>/comparison.md (mean +- std over seeds), comparison.json and comparison.png (per-class test
accuracy against training count, averaged over seeds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import List, Optional

from tabulate import tabulate

from stk_nmt.core import AGGREGATE_LABELS, AGGREGATES
from stk_nmt.files import atomic_write_text, read_json, write_json

from ..cli import prog_name
from . import train
from .plots import plot_per_class_accuracy

COLUMNS = ("top1", "top5", "many_top1", "medium_top1", "few_top1")
HEADERS = ("aggregate", "top-1", "top-5", "many-shot top-1", "medium-shot top-1", "few-shot top-1")


def run_or_load(save_dir: str, train_args: List[str]) -> dict:
    metrics_path = os.path.join(save_dir, train.METRICS)
    if os.path.exists(metrics_path):
        metrics = read_json(metrics_path)
        if metrics["epochs_done"] == metrics["args"]["epochs"]:
            return metrics
    return train.main([*train_args, "--save-dir", save_dir, "--no-plot"])


def mean_std(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog_name("stk_nmt.vision.compare"), description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--aggregates", nargs="+", choices=AGGREGATES, default=["average", "atk", "stk"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    # argparse takes everything after "--" as positionals: the training runs' own arguments.
    p.add_argument("train_args", nargs="*", metavar="-- TRAIN_ARGS",
                   help="arguments for every run of python -m stk_nmt.vision.train, after --")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    extra = args.train_args
    os.makedirs(args.out, exist_ok=True)

    results = {}
    for aggregate in args.aggregates:
        runs = []
        for seed in args.seeds:
            save_dir = os.path.join(args.out, f"{aggregate}-seed{seed}")
            print(f"== {aggregate}, seed {seed} -> {save_dir}", file=sys.stderr)
            runs.append(run_or_load(save_dir, [*extra, "--aggregate", aggregate, "--seed", str(seed)]))
        results[aggregate] = runs

    first = next(iter(results.values()))[0]
    a = first["args"]
    header = (f"{a['dataset']}, IF {a['imb_factor']:g}, model {a['model']}, loss {a['loss']}, {a['epochs']} epochs, "
              f"batch {a['batch_size']}, k = {a['k_ratio']:g} x batch, delta = {a['delta']:g}, seeds {args.seeds}")
    summary, curves, rows = {}, {}, []
    for aggregate, runs in results.items():
        summary[aggregate] = {c: [r[c] for r in runs] for c in COLUMNS}
        rows.append([AGGREGATE_LABELS[aggregate], *(mean_std(summary[aggregate][c]) for c in COLUMNS)])
        per_class = [statistics.mean(r["per_class_top1"][c] for r in runs) for c in range(len(first["train_counts"]))]
        curves[AGGREGATE_LABELS[aggregate]] = {"train_counts": first["train_counts"], "per_class_top1": per_class,
                                    "top1": statistics.mean(r["top1"] for r in runs)}
    table = (f"Test accuracy (%), mean ± std over {len(args.seeds)} seeds. {header}.\n\n"
             + tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True) + "\n")
    atomic_write_text(os.path.join(args.out, "comparison.md"), table)
    write_json(os.path.join(args.out, "comparison.json"), {"setting": header, "seeds": args.seeds, "results": summary}, indent=1)
    plot_per_class_accuracy(curves, os.path.join(args.out, "comparison.png"),
                            title=f"{a['dataset']} IF {a['imb_factor']:g}, {a['loss']}, mean of {len(args.seeds)} seeds")
    print(table)
    return summary


if __name__ == "__main__":
    main()
