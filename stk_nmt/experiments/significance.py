"""Is one aggregate's test error really different from another's over the repeats of a table?

The repeats of a tabular experiment are random train / validation / test splits of one dataset, and
every aggregate is trained on the same splits, so the comparison is paired by split. The splits
overlap, which makes their test errors correlated: the ordinary paired t-test then understates the
variance of the mean difference and finds differences that are not there. Nadeau and Bengio's
corrected resampled t-test (Machine Learning 52, 2003) inflates the variance for that overlap:

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d)),  J - 1 degrees of freedom,

d the J per-split differences. With n_test / n_train = 0 it is the ordinary paired t-test
(scipy.stats.ttest_rel, checked in the tests). Neither it nor Holm's step-down adjustment is in an
installed package (scipy has the t distribution and Benjamini-Hochberg only), hence the few lines here.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05


def corrected_resampled_ttest(differences: Sequence[float], test_train_ratio: float) -> Optional[dict]:
    """The corrected resampled t-test of mean(differences) = 0, two-sided; None below 2 splits.

    Returns mean, se (the corrected standard error), t, df and p. Identical pairs (all differences
    0) give p = 1; a constant non-zero difference gives p = 0."""
    if test_train_ratio < 0 or not math.isfinite(test_train_ratio):
        raise ValueError(f"test_train_ratio must be a finite number >= 0, got test_train_ratio={test_train_ratio!r}")
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or not np.isfinite(d).all():
        raise ValueError(f"differences must be a 1-D sequence of finite numbers, got {differences!r:.80}")
    J = d.size
    if J < 2:
        return None
    mean, var = float(d.mean()), float(d.var(ddof=1))
    se = math.sqrt((1.0 / J + test_train_ratio) * var)
    if se == 0.0:
        t, p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), df=J - 1))
    return {"mean": mean, "se": se, "t": t, "df": J - 1, "p": p}


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values (family-wise error over all the given tests)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def paired_comparisons(rows: Sequence[dict], reference: str, test_train_ratio: float,
                       alpha: float = ALPHA) -> List[dict]:
    """reference's test error against every other method's, per dataset and loss, paired by repeat.

    rows: summarize()'s rows, each with `tests` and `repeats` (the selected configuration's test
    metric on each finished repeat). Only repeats both methods have are paired. Each comparison:
    dataset, loss, other, n (pairs), mean (reference - other: negative is a lower error for the
    reference), se, p, p_holm (over all the comparisons returned) and verdict: "lower", "higher" or
    "no difference" at alpha after Holm's adjustment."""
    by_key: Dict[tuple, dict] = {(r["dataset"], r["loss"], r["method"]): r for r in rows if r.get("tests")}
    found = []
    for (dataset, loss, method), ref in by_key.items():
        if method != reference:
            continue
        ref_by_repeat = dict(zip(ref["repeats"], ref["tests"]))
        for (d, l, other), row in by_key.items():
            if (d, l) != (dataset, loss) or other == reference:
                continue
            pairs = [(ref_by_repeat[r], t) for r, t in zip(row["repeats"], row["tests"]) if r in ref_by_repeat]
            test = corrected_resampled_ttest([a - b for a, b in pairs], test_train_ratio)
            if test is not None:
                found.append({"dataset": dataset, "loss": loss, "other": other, "n": len(pairs), **test})
    for comparison, adjusted in zip(found, holm([c["p"] for c in found])):
        comparison["p_holm"] = adjusted
        comparison["verdict"] = ("no difference" if adjusted >= alpha
                                 else "lower" if comparison["mean"] < 0 else "higher")
    return found
