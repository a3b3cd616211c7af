"""Regression (STk paper, Table 6): sinc and housing, square and absolute losses, test RMSE.

    python examples/regression.py --mode quick --out results
    python examples/regression.py --mode full  --out results

Same protocol as the classification tables (2-layer MLP, 0.5/0.25/0.25, batch 16, AdaGrad, early
stopping, validation grid); targets scaled to [0, 1]. sinc is 1000 points, x ~ U[-10, 10], 10 RBF
features, noise N(0, 0.2^2), resampled per repeat; housing is mlxtend's copy of Boston housing.
abalone and cpusmall are not shipped by any installed package and are not run.
Writes <out>/regression.{csv,json,png}.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.datasets import REGRESSION, REGRESSION_MISSING, load_regression  # noqa: E402
from stk_nmt.experiments.table_runs import MODES, plot_table, run_table  # noqa: E402
from stk_nmt.experiments.tabular import METHODS, REGRESSION_LOSSES  # noqa: E402

# The paper's Table 6 compares Average, MAT_k and ST_k.
TABLE6_METHODS = ("average", "matk", "stk")


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(REGRESSION), choices=REGRESSION)
    parser.add_argument("--losses", nargs="+", default=list(REGRESSION_LOSSES), choices=REGRESSION_LOSSES)
    parser.add_argument("--methods", nargs="+", default=list(TABLE6_METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, help="random splits (default: 50 full, 3 quick, 1 smoke)")
    parser.add_argument("--summarize-only", action="store_true", help="train nothing: summarise the finished cells")
    args = parser.parse_args(argv)
    out = start(args)
    for name, why in REGRESSION_MISSING.items():
        print(f"not available offline: {name} ({why})")
    repeats = args.repeats if args.repeats is not None else MODES[args.mode][2]
    summary = run_table("regression", "regression", load_regression,
                        args.datasets, args.losses, args.methods, args.mode, repeats, args.seed, out,
                        extra={"missing": REGRESSION_MISSING}, train=not args.summarize_only)
    plot_table(summary, out / "regression.png", "test RMSE")
    for row in summary["rows"]:
        print(f"{row['dataset']:<8} {row['loss']:<9} {row['label']:<8} {row['mean']:.4f} +- {row['std']:.4f}")
    print(f"training time {summary['training_seconds']:.0f} s (all cells); results in {out}")
    return summary


if __name__ == "__main__":
    main()
