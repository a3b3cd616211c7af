"""Is one aggregate's test error really different from another's over the repeats of a table?

The repeats of a tabular experiment are random train / validation / test splits of one dataset, and
every aggregate is trained on the same splits, so the comparison is paired by split. The splits
overlap, which makes their test errors correlated: the ordinary paired t-test then understates the
variance of the mean difference and finds differences that are not there. Nadeau and Bengio's
corrected resampled t-test (Machine Learning 52, 2003) inflates the variance for that overlap:

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d)),  J - 1 degrees of freedom,

d the J per-split differences. With n_test / n_train = 0 it is the ordinary paired t-test
(scipy.stats.ttest_rel, checked in the tests). The test, Holm's adjustment and the detectable
difference live in `stk_nmt.stats`, shared with the translation study; this module pairs the rows.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from ..stats import ALPHA, corrected_resampled_ttest, holm

__all__ = ["ALPHA", "corrected_resampled_ttest", "holm", "paired_comparisons"]


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
