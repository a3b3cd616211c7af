"""Binary classification on KEEL data (STk paper, Tables 3 and 4).

    python examples/binary_classification.py --mode quick --out results     # minutes
    python examples/binary_classification.py --mode full  --out results     # the paper's grid (hours)

2-layer MLP (10 hidden), L2 ||w||^2/(2C), split 0.5/0.25/0.25, batch 16, AdaGrad, early stopping on
validation; k, C, lr and delta selected on validation; logistic and hinge individual losses;
mean +- std of the test misclassification rate (%) over repeats. Writes <out>/binary_classification
.{csv,json,png}; finished cells stay in <out>/cells/ and a rerun resumes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.datasets import CLASSIFICATION, load_keel  # noqa: E402
from stk_nmt.experiments.tables import MODES, plot_table, run_table  # noqa: E402
from stk_nmt.experiments.tabular import CLASSIFICATION_LOSSES, METHODS  # noqa: E402


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(CLASSIFICATION), choices=CLASSIFICATION)
    parser.add_argument("--losses", nargs="+", default=list(CLASSIFICATION_LOSSES), choices=CLASSIFICATION_LOSSES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, help="random splits (default: 10 full, 3 quick, 1 smoke)")
    args = parser.parse_args(argv)
    out = start(args)
    repeats = args.repeats if args.repeats is not None else MODES[args.mode][2]
    summary = run_table("binary_classification", "classification", lambda d, s: load_keel(d),
                        args.datasets, args.losses, args.methods, args.mode, repeats, args.seed, out)
    plot_table(summary, out / "binary_classification.png", "test error (%)")
    for row in summary["rows"]:
        print(f"{row['dataset']:<11} {row['loss']:<9} {row['label']:<8} {row['mean']:6.2f} +- {row['std']:5.2f}")
    print(f"training time {summary['training_seconds']:.0f} s (all cells); results in {out}")
    return summary


if __name__ == "__main__":
    main()
