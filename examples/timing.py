"""Timing (STk paper, Table 1): the paper's measurement, and ours per pass.

    python examples/timing.py --out results                 # quick
    python examples/timing.py --mode full --out results     # the paper's 50 runs

The experiment lives in stk_nmt/experiments/timing.py.
"""

from stk_nmt.experiments.timing import main

if __name__ == "__main__":
    main()
