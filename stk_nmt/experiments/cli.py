"""Command-line conventions shared by the examples: --seed, --out, --mode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch

from stk_nmt.seeding import seed_everything

from .files import results_dir, write_csv, write_json

# torch's own default, read before any example changes it (the timing example restores it).
DEFAULT_THREADS = torch.get_num_threads()


def base_parser(description: str, modes=("full", "quick", "smoke"), default_mode="quick") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="results", help="results directory (default ./results)")
    parser.add_argument("--mode", choices=modes, default=default_mode,
                        help=f"run size: {', '.join(modes)} (default {default_mode})")
    return parser


def start(args, threads: Optional[int] = 1) -> Path:
    """Seed everything, create the results directory and say what is used.

    threads: torch intra-op threads. The examples train tiny models whose ops are too small to
    split; one thread is faster and does not spin against other jobs. None keeps torch's default.
    """
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got seed={args.seed}")
    seed_everything(args.seed)
    if threads is not None:
        torch.set_num_threads(threads)
    out = results_dir(args.out)
    print(f"{Path(sys.argv[0]).name}: mode={args.mode} seed={args.seed} out={out}", flush=True)
    return out


def write_results(out: Path, name: str, result: dict, rows) -> None:
    """An example's outputs: the whole result as <out>/<name>.json and its table as <out>/<name>.csv."""
    write_json(out / f"{name}.json", result)
    write_csv(out / f"{name}.csv", rows)
