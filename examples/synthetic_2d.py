"""Synthetic 2-D example (STk paper, Figure 3): logistic regression under each aggregate vs the Bayes rule.

    python examples/synthetic_2d.py --out results                 # quick: 2,000 points
    python examples/synthetic_2d.py --mode full --out results     # 10,000 points, more steps

The experiment lives in stk_nmt/experiments/synthetic_2d.py.
"""

from stk_nmt.experiments.synthetic_2d import main

if __name__ == "__main__":
    main()
