"""Statistics of the study: seed spread, per-seed paired bootstrap, and one test over seeds and sentences.

The test across seeds and sentences (`seed_sentence_bootstrap`) is a two-level paired bootstrap.
A system and the baseline were each trained with the same seeds s = 1..S and translate the same N
test sentences. One bootstrap sample b draws
    - S seeds with replacement (s_1 .. s_S), and
    - N sentence indices with replacement (the same indices for every seed and both systems),
and computes
    delta_b = (1/S) sum_j [ M(system, seed s_j, sentences_b) - M(baseline, seed s_j, sentences_b) ]
where M is the corpus metric (BLEU or chrF, from sacrebleu's sufficient statistics summed over the
drawn sentences). The observed delta is the same mean over all seeds and all sentences. As in
sacrebleu's paired bootstrap, the p-value tests delta = 0 against the bootstrap distribution shifted
to mean zero:
    p = (1 + #{b : |delta_b - mean(delta)| >= |delta_observed|}) / (B + 1),
and the 95% interval is the 2.5th..97.5th percentile of delta_b. Resampling the seeds puts the
seed-to-seed spread of the difference into the null distribution, so a difference that one
lucky seed explains is not significant; resampling sentences adds the test-set sampling error.
With one matched seed there is no seed spread to resample: no verdict is given then. With few
seeds (3) the seed level is coarse: the interval is, if anything, too narrow, so a
"no significant difference" verdict is the safe reading, a "gain" needs p well below 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .evaluate import metrics


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


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def verdict(result: TestResult, alpha: float = 0.05) -> str:
    # One matched seed says nothing about the seed spread: no verdict rather than a false "gain".
    if result.n_seeds < 2:
        return "untested (one seed)"
    if result.p_value < alpha and result.ci_low > 0:
        return "gain"
    if result.p_value < alpha and result.ci_high < 0:
        return "loss"
    return "no significant difference"
