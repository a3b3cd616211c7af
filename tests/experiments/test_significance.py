"""The paired test of the results page: the corrected resampled t-test, Holm's adjustment, the pairing."""

import math

import numpy as np
import pytest
from scipy import stats

from stk_nmt.experiments.significance import corrected_resampled_ttest, holm, paired_comparisons


def test_without_the_correction_it_is_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 25), rng.normal(10.5, 2, 25)
    ours = corrected_resampled_ttest(a - b, test_train_ratio=0.0)
    ref = stats.ttest_rel(a, b)
    assert ours["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours["df"] == 24


def test_a_hand_computed_corrected_case():
    # d = 1, 2, 3, 4: mean 2.5, var 5/3; (1/4 + 0.5) * 5/3 = 1.25, so t = 2.5 / sqrt(1.25) = sqrt(5).
    # Student's t with 3 df: P(|T| > t) = 1 - (2/pi) (x / (1 + x^2) + atan x), x = t / sqrt(3).
    result = corrected_resampled_ttest([1.0, 2.0, 3.0, 4.0], test_train_ratio=0.5)
    x = math.sqrt(5.0 / 3.0)
    assert result["t"] == pytest.approx(math.sqrt(5.0), rel=1e-12)
    assert result["se"] == pytest.approx(math.sqrt(1.25), rel=1e-12)
    assert result["p"] == pytest.approx(1 - (2 / math.pi) * (x / (1 + x * x) + math.atan(x)), rel=1e-9)
    # the correction only widens: the uncorrected test finds the same mean more significant
    assert corrected_resampled_ttest([1.0, 2.0, 3.0, 4.0], 0.0)["p"] < result["p"]


def test_degenerate_and_bad_differences():
    assert corrected_resampled_ttest([0.0, 0.0, 0.0], 0.5)["p"] == 1.0
    constant = corrected_resampled_ttest([-0.5, -0.5, -0.5], 0.5)
    assert constant["p"] == 0.0 and constant["t"] == -math.inf
    assert corrected_resampled_ttest([1.0], 0.5) is None
    with pytest.raises(ValueError, match="test_train_ratio"):
        corrected_resampled_ttest([1.0, 2.0], -1.0)
    with pytest.raises(ValueError, match="differences"):
        corrected_resampled_ttest([1.0, float("nan")], 0.5)


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 capped at 1; 0.9 x 1 may not fall below it
    assert holm([]) == []


def _row(method, repeats, tests):
    return {"dataset": "d", "loss": "logistic", "method": method, "repeats": list(repeats), "tests": list(tests)}


def test_comparisons_pair_by_repeat_and_say_plainly_where_there_is_no_difference():
    rng = np.random.default_rng(1)
    split_difficulty = rng.normal(20, 3, 40)  # shared by every method on the same split
    stk = split_difficulty + rng.normal(0, 0.1, 40)
    better = stk + 2.0 + rng.normal(0, 0.1, 40)  # stk lower by 2 on every split
    same = split_difficulty + rng.normal(0, 0.1, 40)
    order = rng.permutation(40)  # the other rows list their repeats in another order, one missing
    rows = [_row("stk", range(40), stk),
            _row("average", order[:-1], better[order[:-1]]),
            _row("matk", order, same[order])]
    found = {c["other"]: c for c in paired_comparisons(rows, "stk", test_train_ratio=0.5)}
    assert found["average"]["n"] == 39 and found["matk"]["n"] == 40
    assert found["average"]["mean"] == pytest.approx(float(np.mean(stk[order[:-1]] - better[order[:-1]])))
    assert found["average"]["verdict"] == "lower" and found["average"]["p_holm"] < 0.05
    assert found["matk"]["verdict"] == "no difference"
    # Paired by position instead of by repeat, the split difficulty would not cancel: the test is
    # then far weaker (here it sees no difference at all).
    misaligned = [_row("stk", range(40), stk), _row("average", range(39), better[order[:-1]])]
    assert paired_comparisons(misaligned, "stk", 0.5)[0]["verdict"] == "no difference"


def test_the_page_table_marks_significant_entries_and_names_the_aggregates_never_beaten():
    from stk_nmt.experiments import report

    rng = np.random.default_rng(2)
    base = rng.normal(20, 3, 30)
    methods = {"stk": base, "average": base + 3.0 + rng.normal(0, 0.2, 30),  # stk clearly lower
               "maximum": base + rng.normal(0, 0.2, 30), "atk": base + rng.normal(0, 0.2, 30),
               "matk": base - 3.0 + rng.normal(0, 0.2, 30)}  # stk clearly higher
    rows = [{**_row(m, range(30), t), "dataset": "wisconsin"} for m, t in methods.items()]
    out = report.significance({"rows": rows}, "logistic", ("australian", "wisconsin"),
                              ("average", "maximum", "atk", "matk", "stk"))
    assert out["n_tests"] == 4 and out["lower"] == ["wisconsin vs Average"] and out["higher"] == ["wisconsin vs MAT_k"]
    # never significantly lower than these: the page states what the tests could detect, not "no gain"
    assert [o["label"] for o in out["never_lower"]] == ["Maximum", "AT_k", "MAT_k"]
    lines = {l.split("|")[2].strip(): l for l in out["table"].splitlines() if l.startswith("| wisconsin")}
    assert set(lines) == {"Average", "Maximum", "AT_k", "MAT_k"} and all("| 30 " in l for l in lines.values())
    assert "| -3." in lines["Average"] and "**ST_k lower**" in lines["Average"]
    assert "| +3." in lines["MAT_k"] and "**ST_k higher**" in lines["MAT_k"]
    assert "no significant difference (detectable: " in lines["Maximum"]
    assert "australian" not in out["table"]  # no finished repeats there: no row
