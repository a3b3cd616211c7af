"""The results page says only what its numbers show: the median |z|, the load sentence, the detectable
difference beside every "no significant difference", how close is close, and the departures list."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from stk_nmt.experiments import paper, report

METHODS = ("average", "maximum", "atk", "matk", "stk")


def _summary(z_by_dataset):
    """Rows whose means sit exactly z paper stds from the paper's (Table 3)."""
    rows = []
    for d, zs in z_by_dataset.items():
        for m, z in zip(METHODS, zs):
            mean, std = paper.TABLE3_LOGISTIC[d][m]
            rows.append({"dataset": d, "loss": "logistic", "method": m, "mean": mean + z * std, "std": 1.0,
                         "n_repeats": 3})
    return {"rows": rows}


def test_median_abs_z_is_the_median_on_odd_and_even_counts():
    odd = {"australian": (0.1, -0.5, 2.0, 0.3, -1.2)}  # |z| sorted 0.1 0.3 0.5 1.2 2.0: median 0.5
    out = report.comparison(_summary(odd), "logistic", ("australian",), METHODS, 2)["counts"]
    assert out["n_z"] == 5 and out["median_abs_z"] == pytest.approx(0.5)
    even = {**odd, "wisconsin": (0.2, 0.4, -0.6, 0.8, 3.0)}
    # ten |z|: 0.1 0.2 0.3 0.4 0.5 | 0.6 0.8 1.2 2.0 3.0: the median is (0.5 + 0.6) / 2, not the upper 0.6
    out = report.comparison(_summary(even), "logistic", ("australian", "wisconsin"), METHODS, 2)["counts"]
    assert out["n_z"] == 10 and out["median_abs_z"] == pytest.approx(0.55)
    assert out["within_1"] == 7


def _timing(load, cpu_count=2):
    rows = [{"n": 10_000, "k": 5, "rounds": 5, "seconds": {"atk_heap": 9.0, "atk_sort": 3.0, "atk_topk": 1.5,
                                                           "stk_naive": 2.0, "stk_fused": 1.0, "mean": 0.5}}]
    method = {"seconds_mean": 0.1, "seconds_std": 0.0, "runs": 1, "iterations_mean": 400}
    return {"k": 5, "torch": "x", "threads": 1, "load_average_1min": load, "cpu_count": cpu_count, "rows": rows,
            "to_tolerance": {"n": 10_000, "k": 5, "tol": 1e-2, "lr": 1e-3, "methods": {"atk": method, "stk": method}}}


def test_timing_and_run_time_sentences_follow_the_recorded_load():
    below = report.render_page({"timing": _timing([1.0, 1.0])}, {}, "smoke", 0,
                               machine={"cpu_count": 2, "nice": 0, "load_average_1min": 1.9})
    assert "Load average before / after: 1.0 /\n1.0 on 2 cores (at or below the core count)" in below
    assert "with a load average of 1.9\nwhen the run started (at or below the core count)" in below
    assert "other jobs shared" not in below and "upper bounds" not in below
    above = report.render_page({"timing": _timing([1.5, 2.6])}, {}, "smoke", 0,
                               machine={"cpu_count": 2, "nice": 19, "load_average_1min": 5.2})
    assert "1.5 /\n2.6 on 2 cores (above the core count: other jobs shared the CPU, so these times are upper " \
           "bounds)" in above
    assert "at nice 19, with a load average of 5.2\nwhen the run started (above the core count" in above


def _paired_summary(diffs_by_dataset, n=690):
    """ST_k and Average over J splits, ST_k = Average + the given differences."""
    rows, shapes = [], {}
    for d, diffs in diffs_by_dataset.items():
        base = 14.0 + np.sin(np.arange(len(diffs)))  # any per-split level: the test pairs it away
        for m, tests in (("average", base), ("stk", base + diffs)):
            rows.append({"dataset": d, "loss": "logistic", "method": m, "mean": float(np.mean(tests)),
                         "std": float(np.std(tests)), "n_repeats": len(diffs), "tests": [float(t) for t in tests],
                         "repeats": list(range(len(diffs)))})
        shapes[d] = [n, 14, 14]
    return {"rows": rows, "shapes": shapes}


def test_not_significant_carries_the_detectable_difference_by_hand():
    J = 50
    # pairs -a, +a: the differences' mean is exactly 0.1
    diffs = 0.1 + np.where(np.arange(J) % 2, 1.0, -1.0) * np.repeat(np.linspace(0.5, 1.5, J // 2), 2)
    summary = _paired_summary({"australian": diffs, "wisconsin": -diffs})
    out = report.significance(summary, "logistic", ("australian", "wisconsin"), ("average", "stk"))
    assert out["n_tests"] == 2 and out["alpha_strict"] == pytest.approx(0.025)
    sd = np.std(diffs, ddof=1)
    se = sd * math.sqrt(1 / J + 0.25 / 0.5)  # Nadeau-Bengio: n_test / n_train = 0.25 / 0.5
    t = 0.1 / se
    p = 2 * stats.t.sf(t, J - 1)
    # By hand: for 49 degrees of freedom the noncentral t is close to the shifted t, so the difference
    # detected with 80% power is about (t_{1 - alpha/2} + t_{0.8}) se.
    hand = {a: (stats.t.ppf(1 - a / 2, J - 1) + stats.t.ppf(0.8, J - 1)) * se for a in (0.05, 0.025)}
    line = next(l for l in out["table"].splitlines() if l.startswith("| australian"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[:4] == ["australian", "Average", "50", "+0.10"]
    assert float(cells[4]) == pytest.approx(p, abs=1e-3)  # uncorrected p
    assert float(cells[5]) == pytest.approx(min(1.0, 2 * p), abs=1e-3)  # Holm over two equal p-values
    assert float(cells[6]) == pytest.approx(hand[0.05], rel=1e-2)
    found = re.fullmatch(r"no significant difference \(detectable: ([0-9.]+) points\)", cells[7])
    assert found and float(found[1]) == pytest.approx(hand[0.025], rel=1e-2)
    assert not re.search(r"\bgain\b", out["table"])
    # ST_k is never significantly lower than Average: the paper's Average - ST_k gaps beside what was detectable
    (never,) = out["never_lower"]
    gaps = [paper.TABLE3_LOGISTIC[d]["average"][0] - paper.TABLE3_LOGISTIC[d]["stk"][0] for d in ("australian", "wisconsin")]
    assert never["label"] == "Average" and never["paper_gap_min"] == pytest.approx(min(gaps))
    assert never["paper_gaps_below"] == 2  # 0.19 and 0.34 points, both below about 1.5


def test_how_close_is_close_puts_the_binomial_floor_beside_the_papers_std():
    J = 50
    wobble = np.where(np.arange(J) % 2, 0.5, -0.5)  # mean 0, sample variance 0.25 * 50 / 49
    p_avg, p_stk = paper.TABLE3_LOGISTIC["australian"]["average"], paper.TABLE3_LOGISTIC["australian"]["stk"]
    tests = {"average": p_avg[0] + 0.1 + wobble, "stk": p_stk[0] + 0.5 + wobble}
    summary = {"shapes": {"australian": [690, 14, 14]}, "rows": [
        {"dataset": "australian", "loss": "logistic", "method": m, "mean": float(np.mean(t)), "std": 0.5,
         "n_repeats": J, "tests": t.tolist(), "repeats": list(range(J))} for m, t in tests.items()]}
    out = report.closeness(summary, "logistic", ("australian",), ("average", "stk"))
    # australian: 690 rows, test split 690 - 345 - 172 = 173; at our ST_k error of 13.858%:
    # sqrt(0.13858 * 0.86142 / 173) = 2.63 points, beside the paper's ST_k std of 0.98
    cells = [c.strip() for c in out["table"].splitlines()[2].split("|")[1:-1]]
    assert cells[:4] == ["australian", "173", "2.63", "0.98"]
    assert out["below_floor"] == ["australian"]
    # differences against sqrt(0.2551 / 50 + paper std^2 / 50): Average 0.1 against 0.162 (within one SE),
    # ST_k 0.5 against 0.156 (beyond two)
    assert (out["n_cells"], out["within_1se"], out["within_2se"], out["z_within_1"]) == (2, 1, 1, 2)
    # in paper stds, the smaller of the two is Average's: sqrt(0.25 / 49 + 1.025^2 / 50) / 1.025
    assert out["se_in_paper_std_min"] == pytest.approx(math.sqrt(0.25 / 49 + 1.025 ** 2 / 50) / 1.025, rel=1e-6)


def test_departures_are_computed_from_the_configuration():
    cfg = {"max_epochs": 200, "patience": 50, "paper_patience_steps": 50, "min_gain": 1e-6, "batch_size": 16,
           "n_examples": {"phoneme": 5404, "wisconsin": 683}, "selected_capped": 40,
           "data_differences": {"german": "another version"}, "missing": {"appendicitis": "not shipped"},
           "std_ddof": 0,
           "gaussian": {"max_steps": 20_000, "patience_steps": 200, "eval_every": 1, "capped": 3, "cells": 26}}
    lines = report.departures(cfg)
    # phoneme: 2702 training rows, ceil(2702 / 16) = 169 steps an epoch, 50 epochs = 8,450 optimizer steps;
    # wisconsin: 342 rows, 22 steps an epoch, 1,100
    assert "window is 50 epochs: 1,100 optimizer steps on wisconsin to 8,450 on phoneme (batch 16), where a " \
           "reading in optimizer steps would stop after 50." in lines[0]
    assert lines[1] == ("Epoch cap: at most 200 epochs, a cap not in the paper's protocol; 40 of the selected "
                        "configurations' runs hit it.")
    assert "Data, german: another version." in lines and "Data, appendicitis: not run; not shipped." in lines
    assert any("population stds" in l and "ddof = 0" in l and "1.010x at J = 50" in l for l in lines)
    assert lines[-1].startswith("Table 2 and Figure 4: at most 20,000 Adam steps, a cap not in the paper's protocol "
                                "(3 of 26 runs hit it)")
    cfg.update(std_ddof=1, gaussian=None, n_examples={"phoneme": 2 * 800})
    lines = report.departures(cfg)
    assert "50 epochs: 2,500 optimizer steps on phoneme" in lines[0]  # 800 rows, 50 steps an epoch
    assert not any("population" in l or "Table 2" in l for l in lines) and "ddof = 1" in lines[-1]


def test_gaussian_run_archives_whole_repeats_and_resumes_elsewhere(tmp_path):
    from stk_nmt.experiments import imbalance_sweep

    archive = tmp_path / "archive"
    first = imbalance_sweep.main(["--mode", "smoke", "--out", str(tmp_path / "a"), "--repeats", "2", "--no-figure4",
                                  "--cell-archive", str(archive)])
    assert sorted(p.name for p in archive.iterdir()) == ["repeat-000.tar.xz", "repeat-001.tar.xz"]
    # another machine: nothing but the archives; summarising trains nothing and finds the same table
    again = imbalance_sweep.main(["--mode", "smoke", "--out", str(tmp_path / "b"), "--repeats", "3", "--no-figure4",
                                  "--cell-archive", str(archive), "--summarize-only"])
    assert (again["repeats_done"], again["repeats"], again["cells"]) == (2, 3, 16)
    key = lambda rows: {r["method"]: (r["accuracy_mean"], r["para_f1_mean"], r["by_repeat"]) for r in rows}
    assert key(again["table2"]) == key(first["table2"])
    # the longer window keeps its cells apart
    assert imbalance_sweep.cells_folder(tmp_path, "full", 0, 1000).name == "gaussian-full-p1000-seed0"
    assert imbalance_sweep.cells_folder(tmp_path, "full", 0, 200).name == "gaussian-full-seed0"
