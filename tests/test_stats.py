"""stk_nmt.stats: the seed-level tests, Holm, and the detectable difference, against independent computations."""

import math

import numpy as np
import pytest
from scipy import stats

from stk_nmt.stats import (detectable_difference, holm, paired_ttest, sign_flip_test, t_test_power)


def test_paired_ttest_is_scipys_on_a_hand_made_case():
    a = np.array([25.1, 24.3, 26.0, 25.5, 24.9])
    b = np.array([24.6, 24.4, 25.1, 25.0, 24.2])
    ours = paired_ttest(a - b)
    ref = stats.ttest_rel(a, b)
    assert ours["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours["df"] == 4 and ours["n"] == 5
    assert ours["sd"] == pytest.approx(np.std(a - b, ddof=1), rel=1e-12)
    assert paired_ttest([1.0]) is None


def test_sign_flip_by_hand_and_against_scipy():
    # d = 1, 2, 3: the 8 sums of +-1 +-2 +-3 are 6, 4, 2, 0, 0, -2, -4, -6; |sum| >= 6 twice.
    result = sign_flip_test([1.0, 2.0, 3.0])
    assert result["p"] == pytest.approx(2 / 8) and result["min_p"] == pytest.approx(2 / 8)
    # five seeds can never reach 0.05: the smallest p is 2/32
    assert sign_flip_test([0.3, 0.5, 0.2, 0.4, 0.6])["p"] == pytest.approx(0.0625)
    d = np.array([0.4, -0.1, 0.7, 0.2, -0.3, 0.5])
    ref = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                 n_resamples=np.inf, alternative="two-sided")
    assert sign_flip_test(d)["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert sign_flip_test([0.0, 0.0])["p"] == 1.0


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.01, 0.02]) == pytest.approx([0.2, 0.03, 0.04])


def test_detectable_difference_matches_the_normal_formula_for_many_runs():
    # For large n the t-test is the z-test: D = (z_{0.975} + z_{0.8}) * sd / sqrt(n) = 2.8016 * sd / sqrt(n),
    # less the negligible far-tail term.
    sd, n = 1.3, 4000
    hand = (1.959964 + 0.841621) * sd / math.sqrt(n)
    assert detectable_difference(sd, n) == pytest.approx(hand, rel=2e-3)
    # Bonferroni's strictest Holm step for m = 6 comparisons: z_{1 - 0.05/12} = 2.638
    assert detectable_difference(sd, n, alpha=0.05 / 6) == pytest.approx((2.638257 + 0.841621) * sd / math.sqrt(n), rel=2e-3)


def test_detectable_difference_at_a_strict_alpha_with_the_split_correction():
    # 50 splits, alpha / m for m = 24 comparisons, Nadeau-Bengio ratio 0.5: scipy's noncentral t cdf
    # returns nan in the far lower tail on the way (at nc 6.4), which must not stop the solve. By hand, for
    # 49 degrees of freedom: D ~ (t_{1 - 0.05/48} + t_{0.8}) * sd * sqrt(1/50 + 0.5).
    sd, n, alpha = 1.0, 50, 0.05 / 24
    hand = (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * sd * math.sqrt(1 / n + 0.5)
    found = detectable_difference(sd, n, alpha=alpha, test_train_ratio=0.5)
    assert found == pytest.approx(hand, rel=2e-2)
    assert t_test_power(found, sd, n, alpha, test_train_ratio=0.5) == pytest.approx(0.8, abs=1e-6)
    assert math.isfinite(t_test_power(12 * math.sqrt(1 / n + 0.5), sd, n, alpha, test_train_ratio=0.5))


def test_detectable_difference_for_five_seeds_has_eighty_percent_power_by_simulation():
    # Independent check: simulate 5 seeds whose differences are normal with the detectable mean, run
    # scipy's paired t-test on each, count rejections.
    sd, n = 0.4, 5
    D = detectable_difference(sd, n)
    assert t_test_power(D, sd, n) == pytest.approx(0.8, abs=1e-9)
    rng = np.random.default_rng(7)
    draws = rng.normal(D, sd, size=(40000, n))
    p = stats.ttest_1samp(draws, 0.0, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(0.8, abs=0.01)
    # far wider than the z formula at n = 5: the t quantiles with 4 df
    assert D > 2.8016 * sd / math.sqrt(n) * 1.3


def test_detectable_difference_edges_and_bad_input():
    assert detectable_difference(0.5, 1) is None
    assert detectable_difference(0.0, 5) == 0.0
    with pytest.raises(ValueError, match="sd=-1"):
        detectable_difference(-1.0, 5)
    with pytest.raises(ValueError, match="power=1.5"):
        detectable_difference(1.0, 5, power=1.5)
    # the correction for overlapping splits widens it
    assert detectable_difference(1.0, 50, test_train_ratio=0.25) > detectable_difference(1.0, 50)


def test_detectable_difference_at_a_holm_alpha_for_five_seeds():
    # Defect: scipy's nct.cdf(-c, df, nc) is NaN for some large nc, which stopped the root search at
    # alpha = 0.05/6 (the strictest Holm step for 6 comparisons) with "function value is NaN".
    sd, n, alpha = 0.4, 5, 0.05 / 6
    D = detectable_difference(sd, n, alpha=alpha)
    assert t_test_power(D, sd, n, alpha=alpha) == pytest.approx(0.8, abs=1e-9)
    # Independent: the upper tail alone (the lower tail is below 1e-6 there) from scipy's nct.sf.
    c = stats.t.ppf(1 - alpha / 2, n - 1)
    assert stats.nct.sf(c, n - 1, D / (sd / math.sqrt(n))) == pytest.approx(0.8, abs=1e-6)
    assert all(math.isfinite(t_test_power(x * sd, sd, n, alpha=alpha)) for x in (2.0, 4.0, 8.0, 16.0, 40.0))


def test_runs_needed_is_the_first_run_count_with_the_power():
    from scipy import stats as scipy_stats

    from stk_nmt.stats import runs_needed

    def power(d, sd, n, alpha):  # the two-sided paired t-test's power, from scipy's noncentral t
        nc, c = d / (sd / math.sqrt(n)), scipy_stats.t.ppf(1 - alpha / 2, n - 1)
        return scipy_stats.nct.sf(c, n - 1, nc) + scipy_stats.nct.cdf(-c, n - 1, nc)

    for d, sd, alpha in ((0.5, 1.0, 0.05), (0.53, 0.4, 0.05 / 6), (-0.2, 0.3, 0.05)):
        n = runs_needed(d, sd, alpha)
        assert power(d, sd, n, alpha) >= 0.8 > power(d, sd, n - 1, alpha)
    # Against the normal approximation n = ((z_{1-a/2} + z_{0.8}) sd / d)^2 = 31.4 for d = sd / 2: the t
    # test needs a few more runs than the normal one.
    assert 32 <= runs_needed(0.5, 1.0) <= 35
    assert runs_needed(1.0, 0.0) == 2 and runs_needed(1e-4, 10.0, max_runs=100) is None
    with pytest.raises(ValueError, match="sd must be a finite number >= 0, got sd=-1"):
        runs_needed(0.5, -1.0)
