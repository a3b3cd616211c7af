"""Binary classification on KEEL data (STk paper, Tables 3 and 4).

    python examples/binary_classification.py --mode quick --out results     # minutes
    python examples/binary_classification.py --mode full  --out results     # the paper's protocol (days on 2 cores)
    python examples/binary_classification.py --mode full  --out results --summarize-only   # partial table

--mode full is the paper's protocol: the whole (k, C, eta, delta) grid, 50 repeats, early stopping when
the validation error gains less than 1e-6 for 50 checks (one per epoch) with rollback to the best
check, capped at 200 epochs. --mode quick cuts it to a 12-point grid, 3 repeats, patience 5, 20 epochs.

2-layer MLP (10 hidden), L2 ||w||^2/(2C), split 0.5/0.25/0.25, batch 16, AdaGrad; k, C, lr and
delta selected on validation; logistic and hinge individual losses;
mean +- std of the test misclassification rate (%) over repeats. Writes <out>/binary_classification
.{csv,json,png}; finished cells stay in <out>/cells/ and a rerun resumes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stk_nmt.experiments.cli import base_parser, start  # noqa: E402
from stk_nmt.experiments.datasets import CLASSIFICATION, load_keel  # noqa: E402
from stk_nmt.experiments.table_runs import MODES, plot_table, run_table  # noqa: E402
from stk_nmt.experiments.tabular import CLASSIFICATION_LOSSES, METHODS  # noqa: E402


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(CLASSIFICATION), choices=CLASSIFICATION)
    parser.add_argument("--losses", nargs="+", default=list(CLASSIFICATION_LOSSES), choices=CLASSIFICATION_LOSSES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, help="random splits (default: 50 full, 3 quick, 1 smoke)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="train nothing: summarise the finished cells (a partial or running full grid)")
    args = parser.parse_args(argv)
    out = start(args)
    repeats = args.repeats if args.repeats is not None else MODES[args.mode][2]
    summary = run_table("binary_classification", "classification", lambda d, s: load_keel(d),
                        args.datasets, args.losses, args.methods, args.mode, repeats, args.seed, out,
                        train=not args.summarize_only)
    plot_table(summary, out / "binary_classification.png", "test error (%)")
    for row in summary["rows"]:
        print(f"{row['dataset']:<11} {row['loss']:<9} {row['label']:<8} {row['mean']:6.2f} +- {row['std']:5.2f}")
    print(f"{summary['cells_done']} of {summary['cells_total']} cells; training time "
          f"{summary['training_seconds']:.0f} s (all finished cells); results in {out}")
    return summary


if __name__ == "__main__":
    main()
