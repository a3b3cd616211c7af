"""The d = 200 Gaussian experiment (STk paper, Table 2 and Figure 4): accuracy and ParaF1.

    python examples/imbalance_sweep.py --out results                    # quick: 2 repeats
    python examples/imbalance_sweep.py --mode full --out results        # the paper's 50 repeats

The experiment lives in stk_nmt/experiments/imbalance_sweep.py (setup in gaussian.py).
"""

from stk_nmt.experiments.imbalance_sweep import main

if __name__ == "__main__":
    main()
