"""Tests over training runs: paired differences, Holm's adjustment, and what a test could have seen.

One helper per job for every page that compares systems over runs (the results page's repeated
splits, the translation study's seeds). The unit of evidence is one number per run: a seed's
corpus-level BLEU, a split's test error. For J paired runs with differences d_1..d_J:

- `corrected_resampled_ttest(d, r)`: t = mean(d) / sqrt((1/J + r) var(d)), J - 1 degrees of freedom.
  r = n_test / n_train is Nadeau and Bengio's correction for random splits that overlap (Machine
  Learning 52, 2003); r = 0 is the ordinary paired t-test (`paired_ttest`, scipy.stats.ttest_rel).
- `sign_flip_test(d)`: the exact permutation test of a symmetric null, over all 2^J sign flips. With
  J seeds its smallest attainable p is 2 / 2^J (0.0625 at J = 5): it can never reject at 0.05 below
  6 runs, which a page must say where it uses it.
- `holm(p)`: Holm's step-down adjustment, family-wise error over every comparison on a page.
- `detectable_difference(sd, J, alpha, power)`: the smallest true mean difference that the two-sided
  t-test above rejects with probability `power` (80% by default), from the noncentral t distribution:
  power(D) = P(T' > c) + P(T' < -c), T' ~ t(J - 1, nc = D / se), c = t_{1 - alpha/2, J - 1},
  se = sd sqrt(1/J + r). A "no significant difference" is only as strong as this number: a page states
  it beside every such verdict, at the alpha the verdict used (alpha / m, Holm's strictest step, for a
  family of m comparisons, is the conservative reading).
- `runs_needed(D, sd, alpha, power)`: the other way round, for planning: the fewest runs J whose
  t-test has `power` against a true difference D, given the spread sd seen so far.

Holm's adjustment, the corrected t-test and the power solve are not in an installed package (scipy has
the t and noncentral t distributions and Benjamini-Hochberg only; statsmodels is not a dependency),
hence the few lines here.
"""

from __future__ import annotations

import itertools
import math
from typing import List, Optional, Sequence

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8


def _differences(differences: Sequence[float]) -> np.ndarray:
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or not np.isfinite(d).all():
        raise ValueError(f"differences must be a 1-D sequence of finite numbers, got {differences!r:.80}")
    return d


def corrected_resampled_ttest(differences: Sequence[float], test_train_ratio: float) -> Optional[dict]:
    """The corrected resampled t-test of mean(differences) = 0, two-sided; None below 2 runs.

    Returns mean, sd (of the differences, ddof 1), se (the corrected standard error), t, df, n and p.
    Identical pairs (all differences 0) give p = 1; a constant non-zero difference gives p = 0."""
    if test_train_ratio < 0 or not math.isfinite(test_train_ratio):
        raise ValueError(f"test_train_ratio must be a finite number >= 0, got test_train_ratio={test_train_ratio!r}")
    d = _differences(differences)
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
    return {"mean": mean, "sd": math.sqrt(var), "se": se, "t": t, "df": J - 1, "n": J, "p": p}


def paired_ttest(differences: Sequence[float]) -> Optional[dict]:
    """The ordinary paired t-test over runs (independent runs, e.g. seeds): None below 2 runs."""
    return corrected_resampled_ttest(differences, 0.0)


def sign_flip_test(differences: Sequence[float]) -> Optional[dict]:
    """Exact two-sided sign-flip permutation test of mean(differences) = 0; None for no runs.

    p = #{s in {-1, 1}^J : |mean(s d)| >= |mean(d)|} / 2^J, the observed assignment included.
    min_p is the smallest p this J can give (2 / 2^J, or 1 when every difference is 0)."""
    d = _differences(differences)
    J = d.size
    if J == 0:
        return None
    if J > 20:
        raise ValueError(f"sign_flip_test enumerates 2^J assignments; J={J} runs is too many (use the t-test)")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=J)))
    flipped = np.abs(signs @ d)
    observed = abs(float(d.sum()))
    # A relative tolerance so that assignments equal to the observed sum in exact arithmetic count.
    extreme = flipped >= observed - 1e-12 * max(1.0, observed)
    p = float(extreme.mean())
    return {"mean": float(d.mean()), "n": J, "p": p, "min_p": 2.0 / 2 ** J if observed > 0 else 1.0}


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


def t_test_power(difference: float, sd: float, n: int, alpha: float = ALPHA, test_train_ratio: float = 0.0) -> float:
    """Probability that the two-sided (corrected) paired t-test over n runs rejects at `alpha` when the
    true mean difference is `difference` and the differences' standard deviation is `sd`."""
    df = n - 1
    se = sd * math.sqrt(1.0 / n + test_train_ratio)
    nc = abs(difference) / se
    c = stats.t.ppf(1.0 - alpha / 2.0, df)
    # The lower tail P(T' < -c) as P(T'(-nc) > c), the same by symmetry: scipy's nct.cdf(-c, df, nc)
    # returns NaN in parts of its far lower tail (e.g. df 4, c 4.4, nc 8), which stopped the root search.
    lower = float(stats.nct.sf(c, df, -nc))
    if not math.isfinite(lower):
        # That tail is at most P(T' < 0) = Phi(-nc) (up to the t's heavier tail); where even that bound is
        # negligible it cannot move a power, so it counts as 0; elsewhere refuse rather than guess.
        if stats.norm.cdf(-nc) > 1e-9:
            raise ValueError(f"noncentral t tail not computable at df={df}, nc={nc!r}, c={c!r}")
        lower = 0.0
    return float(stats.nct.sf(c, df, nc)) + lower


def detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER,
                          test_train_ratio: float = 0.0) -> Optional[float]:
    """Smallest true mean difference the two-sided paired t-test over n runs detects with `power`.

    sd: the standard deviation (ddof 1) of the per-run differences, the study's own estimate of it.
    None below 2 runs; 0 when sd is 0 (every difference equal: any non-zero mean is certain)."""
    for name, value in (("sd", sd), ("test_train_ratio", test_train_ratio)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {name}={value!r}")
    if n < 2:
        return None
    if sd == 0.0:
        return 0.0
    se = sd * math.sqrt(1.0 / n + test_train_ratio)
    if power <= alpha:  # power at difference 0 is alpha already
        return 0.0
    # power grows with the difference; bracket the root, then solve on the nc scale.
    high = 1.0
    while t_test_power(high * se, sd, n, alpha, test_train_ratio) < power:
        high *= 2.0
    nc = optimize.brentq(lambda x: t_test_power(x * se, sd, n, alpha, test_train_ratio) - power,
                         0.0, high, xtol=1e-12, rtol=1e-12)
    return float(nc * se)


def runs_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                max_runs: int = 10_000) -> Optional[int]:
    """The fewest paired runs J >= 2 whose two-sided t-test rejects with probability `power` when the
    true mean difference is `difference` and the per-run differences have standard deviation `sd`:
    how many seeds a study needs to see a given effect. None when more than `max_runs` are needed."""
    for name, value in (("difference", difference), ("sd", sd)):
        if not math.isfinite(value) or (name == "sd" and value < 0):
            raise ValueError(f"{name} must be a finite number{' >= 0' if name == 'sd' else ''}, got {name}={value!r}")
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {name}={value!r}")
    if difference == 0.0:
        return None if power > alpha else 2
    if sd == 0.0:
        return 2
    # Power rises with J: double to bracket, then bisect (each step one noncentral-t evaluation).
    low, high = 1, 2
    while t_test_power(difference, sd, high, alpha) < power:
        if high >= max_runs:
            return None
        low, high = high, min(2 * high, max_runs)
    while high - low > 1:
        mid = (low + high) // 2
        if t_test_power(difference, sd, mid, alpha) >= power:
            high = mid
        else:
            low = mid
    return high
