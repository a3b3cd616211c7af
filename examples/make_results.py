"""Regenerate docs/results.md and docs/img/*.png: run every example, then write the page.

    python examples/make_results.py                    # quick mode, results in results/quick
    python examples/make_results.py --mode full        # the paper's protocol (the page states run times)
    python examples/make_results.py --no-run           # re-render from results already in --out

The command lives in stk_nmt/experiments/make_results.py; this file gives it the repository as the
home of the default docs/ and results/.
"""

from pathlib import Path

from stk_nmt.experiments.make_results import main

if __name__ == "__main__":
    main(root=Path(__file__).resolve().parents[1])
