"""Binary classification on KEEL data (STk paper, Tables 3 and 4).

    python examples/binary_classification.py --mode quick --out results
    python examples/binary_classification.py --mode full  --out results     # the paper's protocol
    python examples/binary_classification.py --mode full  --out results --summarize-only   # partial table

The experiment lives in stk_nmt/experiments/binary_classification.py.
"""

from stk_nmt.experiments.binary_classification import main

if __name__ == "__main__":
    main()
