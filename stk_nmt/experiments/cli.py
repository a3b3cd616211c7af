"""Command-line conventions shared by the examples: --seed, --out, --mode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import results_dir, seed_everything


def base_parser(description: str, modes=("full", "quick", "smoke"), default_mode="quick") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="results", help="results directory (default ./results)")
    parser.add_argument("--mode", choices=modes, default=default_mode,
                        help=f"run size: {', '.join(modes)} (default {default_mode})")
    return parser


def start(args) -> Path:
    """Seed everything, create the results directory and say what is used."""
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got seed={args.seed}")
    seed_everything(args.seed)
    out = results_dir(args.out)
    print(f"{Path(sys.argv[0]).name}: mode={args.mode} seed={args.seed} out={out}", flush=True)
    return out
