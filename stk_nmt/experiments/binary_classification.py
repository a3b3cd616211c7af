"""Binary classification on KEEL data (STk paper, Tables 3 and 4).

    python examples/binary_classification.py --mode quick --out results
    python examples/binary_classification.py --mode full  --out results     # the paper's protocol
    python examples/binary_classification.py --mode full  --out results --summarize-only   # partial table

--mode full is the paper's protocol: the whole (k, C, eta, delta) grid, 50 repeats, early stopping when
the validation error gains less than 1e-6 for 50 checks (one per epoch) with rollback to the best
check, capped at 200 epochs. --mode quick cuts it to a 12-point grid, 3 repeats, patience 5, 20 epochs.

2-layer MLP (10 hidden), L2 ||w||^2/(2C), split 0.5/0.25/0.25, batch 16, AdaGrad; k, C, lr and
delta selected on validation; logistic and hinge individual losses;
mean +- std of the test misclassification rate (%) over repeats. Writes <out>/binary_classification
.{csv,json,png}; finished cells stay in <out>/cells/ and a rerun resumes.
"""

from .datasets import CLASSIFICATION, Dataset, load_keel
from .table_runs import table_main
from .tabular import CLASSIFICATION_LOSSES, METHODS


def load(dataset: str, seed: int) -> Dataset:
    """The KEEL table of `dataset` (fixed data: the repeat's seed only changes the split)."""
    return load_keel(dataset)


def main(argv=None) -> dict:
    return table_main(argv, __doc__, "binary_classification", "classification", load,
                      CLASSIFICATION, CLASSIFICATION_LOSSES, METHODS, METHODS, "test error (%)", 2)


if __name__ == "__main__":
    main()
