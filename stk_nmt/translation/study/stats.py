"""Statistics of the study: the seed-level test that gives the verdicts, and secondary bootstraps.

**The verdict** (`seed_test`, `holm_verdicts`): each seed's corpus-level difference d_s = M(system,
seed s) − M(baseline, seed s), then the paired t-test of mean(d) = 0 over the S seeds (stk_nmt.stats).
The exact sign-flip test over the 2^S sign assignments is reported beside it, but cannot decide: its
smallest p is 2 / 2^S (0.0625 at S = 5). Holm's adjustment runs over every comparison on a page
(every pair x system x metric); a comparison is a gain or a loss when its Holm-adjusted p is below
0.05, else "no significant difference", stated with the smallest true difference the t-test detects
with 80% power given the seed spread of d (stk_nmt.stats.detectable_difference) at alpha = 0.05 and
at 0.05 / m, Holm's strictest step for m comparisons.

**Secondary: the two-level bootstrap** (`seed_sentence_bootstrap`), a paired bootstrap over seeds and sentences.
A system and the baseline were each trained with the same seeds s = 1..S and translate the same N
test sentences. One bootstrap sample b draws
    - S seeds with replacement (s_1 .. s_S), and
    - N sentence indices with replacement (the same indices for every seed and both systems),
and computes
    delta_b = (1/S) sum_j [ M(system, seed s_j, sentences_b) - M(baseline, seed s_j, sentences_b) ]
where M is the corpus metric (BLEU or chrF, from sacrebleu's sufficient statistics summed over the
drawn sentences). The observed delta is the same mean over all seeds and all sentences. The p-value
compares |delta_observed| with the bootstrap distribution of delta_b centred on its own mean:
    p = (1 + #{b : |delta_b - mean(delta)| >= |delta_observed|}) / (B + 1),
and the 95% interval is the 2.5th..97.5th percentile of delta_b. (sacrebleu's own paired bootstrap,
used per seed in the study, centres the absolute differences instead: its statistic is
|d_b| - mean_b |d_b|, compared with |d_observed|.) Resampling the seeds puts the
seed-to-seed spread of the difference into the null distribution, so a difference that one
lucky seed explains is not significant; resampling sentences adds the test-set sampling error.
With few seeds the seed level of this bootstrap is coarse and its p is anti-conservative (too small),
which is why it is not used for verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...stats import ALPHA, POWER, detectable_difference, holm, paired_ttest, runs_needed, sign_flip_test
from ..evaluate import metrics
from .systems import parse_system, reference_of


def sentence_stats(metric, hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-sentence sufficient statistics of a sacrebleu metric, shape (N, n_stats)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"hypothesis count {len(hypotheses)} != reference count {len(references)}")
    # The same private hooks sacrebleu's own PairedTest uses for its resampling.
    return np.asarray(metric._extract_corpus_statistics(list(hypotheses), [list(references)]), dtype=np.float64)


def score_from_stats(metric, summed: np.ndarray) -> float:
    return float(metric._compute_score_from_stats(summed.tolist()).score)


def draws(n_seeds: int, n_sentences: int, n_samples: int, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap draws: seed indices (B, S) and sentence indices (B, N)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_seeds, size=(n_samples, n_seeds)),
            rng.integers(0, n_sentences, size=(n_samples, n_sentences)))


@dataclass
class TestResult:
    delta: float  # observed mean over seeds of (system - baseline)
    p_value: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_sentences: int
    n_samples: int


def seed_sentence_bootstrap(system: Sequence[Sequence[str]], baseline: Sequence[Sequence[str]],
                            references: Sequence[str], metric_name: str = "BLEU", lowercase: bool = False,
                            target_lang: str = "", n_samples: int = 1000, seed: int = 12345) -> TestResult:
    """The two-level paired bootstrap (module docstring); system[j] and baseline[j] share seed j."""
    if len(system) != len(baseline) or not system:
        raise ValueError(f"need the same seeds for both systems, got {len(system)} and {len(baseline)} runs")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    metric = metrics(lowercase, target_lang)[metric_name]
    sys_stats = [sentence_stats(metric, h, references) for h in system]
    base_stats = [sentence_stats(metric, h, references) for h in baseline]
    n_seeds, n_sentences = len(system), len(references)
    observed = float(np.mean([score_from_stats(metric, s.sum(0)) - score_from_stats(metric, b.sum(0))
                              for s, b in zip(sys_stats, base_stats)]))
    seed_idx, sent_idx = draws(n_seeds, n_sentences, n_samples, seed)
    deltas = np.empty(n_samples)
    for b in range(n_samples):
        # Multiplicity of each sentence in this draw: summed statistics = counts @ stats.
        counts = np.bincount(sent_idx[b], minlength=n_sentences).astype(np.float64)
        per_seed = np.array([score_from_stats(metric, counts @ s) - score_from_stats(metric, counts @ t)
                             for s, t in zip(sys_stats, base_stats)])
        deltas[b] = per_seed[seed_idx[b]].mean()
    p = (1 + np.sum(np.abs(deltas - deltas.mean()) >= abs(observed))) / (n_samples + 1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return TestResult(observed, float(p), float(low), float(high), n_seeds, n_sentences, n_samples)


def sentence_sampling_se(system: Sequence[Sequence[str]], baseline: Sequence[Sequence[str]],
                         references: Sequence[str], metric_name: str = "BLEU", lowercase: bool = False,
                         target_lang: str = "", n_samples: int = 1000, seed: int = 12345) -> list[float]:
    """Per seed, the standard error of d_s = M(system, s) − M(baseline, s) that the test set's sentence
    sampling alone causes: the sd (ddof 1) of d_s over paired bootstrap resamples of the sentences (the
    same draws for every seed). The part of the seed spread of d that a larger test set would shrink."""
    if len(system) != len(baseline) or not system:
        raise ValueError(f"need the same seeds for both systems, got {len(system)} and {len(baseline)} runs")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    metric = metrics(lowercase, target_lang)[metric_name]
    _, sent_idx = draws(1, len(references), n_samples, seed)
    counts = np.stack([np.bincount(row, minlength=len(references)) for row in sent_idx]).astype(np.float64)
    out = []
    for hyp_s, hyp_b in zip(system, baseline):
        s, b = sentence_stats(metric, hyp_s, references), sentence_stats(metric, hyp_b, references)
        d = [score_from_stats(metric, c @ s) - score_from_stats(metric, c @ b) for c in counts]
        out.append(float(np.std(d, ddof=1)))
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def seed_test(differences: Sequence[float]) -> dict:
    """The seed-level test of one comparison: per-seed differences, paired t-test, sign-flip test.

    Below two seeds there is no seed spread: p is None and the comparison stays untested."""
    d = [float(x) for x in differences]
    t = paired_ttest(d) if len(d) >= 2 else None
    flip = sign_flip_test(d) if d else None
    return {"differences": d, "n": len(d), "mean": float(np.mean(d)) if d else None,
            "sd": t["sd"] if t else None, "t": t["t"] if t else None, "df": t["df"] if t else None,
            "p": t["p"] if t else None, "sign_flip_p": flip["p"] if flip else None,
            "sign_flip_min_p": flip["min_p"] if flip else None}


# The paper's BLEU gains of ST_k over the plain average (its Table 5): the effects a study that means to
# answer it must be able to see. runs_needed turns the seed spread found so far into the seeds needed.
PAPER_BLEU_GAINS = (("IWSLT2014", 0.53), ("WMT2017", 0.21))


def seeds_for_paper_gains(test: dict, alpha: float, power: float = POWER) -> list:
    """[(corpus, gain, seeds)]: the seeds whose t-test has `power` against each of the paper's BLEU
    gains at `alpha`, given this comparison's seed spread (seeds None beyond 10,000)."""
    return [(corpus, gain, runs_needed(gain, test["sd"], alpha, power)) for corpus, gain in PAPER_BLEU_GAINS]


def planned_comparisons(specs: Sequence[str]) -> int:
    """The seed-level tests a finished study of these systems holds: each system against the baseline
    and each variant against its plain system (report.py), BLEU and chrF each."""
    systems = [parse_system(spec) for spec in specs]
    against_baseline = sum(1 for s in systems if s.aggregate is not None)
    variants = sum(1 for s in systems if reference_of(s, list(specs)) is not None)
    return 2 * (against_baseline + variants)


def comparisons(systems: dict) -> list[dict]:
    """A study's seed-level tests, Holm's family: each system against the baseline and each variant
    against its plain system (report.py's `seed_test` and `contrast`), BLEU and chrF."""
    return [t for e in systems.values() for part in (e, e.get("contrast", {}))
            for t in part.get("seed_test", {}).values()]


def holm_verdicts(tests: Sequence[dict], alpha: float = ALPHA, power: float = POWER) -> int:
    """Holm over every test with a p (the page's family); writes into each test dict: holm_p, verdict
    (gain / loss / no significant difference / untested) and the detectable difference at alpha and
    at alpha / m. Returns m, the family size."""
    tested = [t for t in tests if t.get("p") is not None]
    m = len(tested)
    for test, adjusted in zip(tested, holm([t["p"] for t in tested])):
        test["holm_p"] = adjusted
        test["family_size"] = m
        if adjusted < alpha:
            test["verdict"] = "gain" if test["mean"] > 0 else "loss"
        else:
            test["verdict"] = "no significant difference"
        test["detectable"] = {"alpha": alpha, "power": power,
                              "at_alpha": detectable_difference(test["sd"], test["n"], alpha, power),
                              "at_alpha_over_m": detectable_difference(test["sd"], test["n"], alpha / m, power)}
    for test in tests:
        if test.get("p") is None:
            test.update(holm_p=None, family_size=m, verdict="untested (fewer than 2 matched seeds)", detectable=None)
    return m
