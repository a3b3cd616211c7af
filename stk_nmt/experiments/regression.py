"""Regression (STk paper, Table 6): sinc and housing, square and absolute losses, test RMSE.

    python examples/regression.py --mode quick --out results
    python examples/regression.py --mode full  --out results

Same protocol as the classification tables (2-layer MLP, 0.5/0.25/0.25, batch 16, AdaGrad, early
stopping, validation grid); targets scaled to [0, 1]. sinc is 1000 points, x ~ U[-10, 10], 10 RBF
features, noise N(0, 0.2^2), resampled per repeat; housing is mlxtend's copy of Boston housing.
abalone and cpusmall are not shipped by any installed package and are not run.
Writes <out>/regression.{csv,json,png}.
"""

from .datasets import REGRESSION, REGRESSION_MISSING, load_regression
from .table_runs import table_main
from .tabular import METHODS, REGRESSION_LOSSES

# The paper's Table 6 compares Average, MAT_k and ST_k.
TABLE6_METHODS = ("average", "matk", "stk")


def main(argv=None) -> dict:
    return table_main(argv, __doc__, "regression", "regression", load_regression, REGRESSION, REGRESSION_LOSSES,
                      METHODS, TABLE6_METHODS, "test RMSE", 4, extra={"missing": REGRESSION_MISSING},
                      notes=[f"not available offline: {name} ({why})" for name, why in REGRESSION_MISSING.items()])


if __name__ == "__main__":
    main()
