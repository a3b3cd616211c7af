"""Regression (STk paper, Table 6): sinc and housing, square and absolute losses, test RMSE.

    python examples/regression.py --mode quick --out results
    python examples/regression.py --mode full  --out results

The experiment lives in stk_nmt/experiments/regression.py.
"""

from stk_nmt.experiments.regression import main

if __name__ == "__main__":
    main()
