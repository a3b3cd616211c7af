"""The pieces of the paper's protocol: ParaF1, the early-stopping rule with rollback, the d = 200
Gaussian generator, Table 1's iterate-to-tolerance, and the results page's comparison with the paper."""

import math

import numpy as np
import pytest
import torch

from stk_nmt.experiments import gaussian as g
from stk_nmt.experiments import paper, report, tolerance
from stk_nmt.experiments.datasets import DATA_DIFFERENCES, PAPER_TABLE9
from stk_nmt.experiments.stopping import EarlyStopping


def test_para_f1_hand_computed():
    w = np.array([0.5, 0.0, -0.02, 0.005, 0.0, 3.0])
    truth = np.array([True, True, True, False, False, False])
    # estimated support at tol 0.01: {0, 2, 5}; true positives {0, 2}: F1 = 2*2 / (3 + 3)
    assert g.para_f1(w, truth, tol=0.01) == pytest.approx(4 / 6)
    # at tol 0.001 coordinate 3 joins: 2*2 / (4 + 3)
    assert g.para_f1(w, truth, tol=0.001) == pytest.approx(4 / 7)
    assert g.para_f1(np.zeros(6), truth) == 0.0
    assert g.para_f1(np.where(truth, 1.0, 0.0), truth) == 1.0
    with pytest.raises(ValueError, match="tol"):
        g.para_f1(w, truth, tol=-1)


def test_early_stopping_on_a_scripted_curve_rolls_back_to_the_best_check():
    # two models' validation errors, patience 3, min gain 1e-6
    curves = np.array([
        [0.50, 0.40, 0.40, 0.4 - 5e-7, 0.45, 0.30, 0.20],  # gain 5e-7 < 1e-6 is no gain: stops at check 4
        [0.50, 0.49, 0.48, 0.47, 0.46, 0.45, 0.44],  # keeps improving: never stops
    ])
    test = np.array([[9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0]])
    stop = EarlyStopping(2, patience=3, min_gain=1e-6)
    reported = np.full(2, np.nan)
    stopped_at = [None, None]
    for t in range(curves.shape[1]):
        improved = stop.update(torch.tensor(curves[:, t])).numpy()
        reported = np.where(improved, test[:, t], reported)  # rollback: keep what the best check measured
        for i in range(2):
            if stop.stopped[i] and stopped_at[i] is None:
                stopped_at[i] = t
    assert stopped_at == [4, None]
    assert stop.best_step.tolist() == [1, 6]
    assert stop.best.tolist() == pytest.approx([0.40, 0.44])
    # the later, lower errors of model 0 (0.30, 0.20) come after it stopped and are not taken
    assert reported.tolist() == [1.0, 3.0]
    assert not stop.all_stopped


def test_early_stopping_treats_nan_as_no_gain_and_checks_arguments():
    stop = EarlyStopping(1, patience=2)
    assert stop.update(torch.tensor([float("nan")])).tolist() == [False]
    assert stop.update(torch.tensor([0.3])).tolist() == [True]
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(1, patience=0)
    with pytest.raises(ValueError, match="shape"):
        stop.update(torch.zeros(3))


def _scripted_fit(curve, patience, eval_every, max_steps=2_000):
    """fit_with_stopping on a scripted validation-accuracy curve: curve(step) after optimizer step `step`."""
    state = {"step": 0, "snapshots": []}

    def step_fn():
        state["step"] += 1

    run = g.fit_with_stopping(step_fn, lambda: curve(state["step"]),
                              lambda: state["snapshots"].append(state["step"]),
                              patience=patience, min_gain=1e-4, max_steps=max_steps, eval_every=eval_every)
    return run, state["snapshots"]


def _plateau(step):
    # rises to 0.704 at step 60, then wobbles by 5e-5 (a gain below 1e-4) until it jumps to 0.935 at 400
    if step <= 60:
        return 0.5 + 0.204 * step / 60
    if step < 400:
        return 0.704 + (5e-5 if step % 2 else 0.0)
    return 0.935


@pytest.mark.parametrize("eval_every, stop_step", [(1, 260), (10, 260), (30, 270)])
def test_table2_stopping_rule_counts_optimizer_steps(eval_every, stop_step):
    # 200 optimizer steps without a 1e-4 gain end the run, whatever the validation interval: checked every
    # 30 steps the window is still >= 200 steps (the first check at or past best + 200 = 260 is step 270),
    # not 200 // 30 = 6 checks (180 steps).
    run, snapshots = _scripted_fit(_plateau, patience=200, eval_every=eval_every)
    assert run == {"steps": stop_step, "best_step": 60, "best_accuracy": pytest.approx(0.704),
                   "stopped_early": True}
    assert snapshots[-1] == 60  # rollback: the weights kept are those of the best check
    # a longer window sees the jump at step 400 and stops 400 steps after it
    run, snapshots = _scripted_fit(_plateau, patience=400, eval_every=1)
    assert (run["steps"], run["best_step"], run["best_accuracy"], snapshots[-1]) == (800, 400, 0.935, 400)


def test_table2_stopping_rule_accumulates_small_gains_and_stops_at_the_cap():
    # +5e-5 per step: each step gains less than 1e-4, but every second step is 1e-4 above the best, so the
    # rule never fires and the cap ends the run
    run, _ = _scripted_fit(lambda step: 0.5 + 5e-5 * step, patience=200, eval_every=1, max_steps=1_000)
    assert (run["steps"], run["stopped_early"]) == (1_000, False)
    assert run["best_step"] >= 997
    with pytest.raises(ValueError, match="eval_every"):
        g.StepStopping(patience=200, min_gain=1e-4, eval_every=300)
    with pytest.raises(ValueError, match="max_steps"):
        _scripted_fit(_plateau, patience=200, eval_every=1, max_steps=0)


def test_gaussian_covariance_as_printed():
    cov = g.covariance()
    assert cov.shape == (200, 200)
    assert cov[0, 0] == pytest.approx(0.5)  # 0.25^0.5
    assert cov[3, 4] == pytest.approx(0.25**1.5)
    assert cov[10, 7] == pytest.approx(0.25**3.5)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_gaussian_sample_has_the_covariance_means_and_ratio():
    X, y = g.sample(20_000, 0.2, np.random.default_rng(0))
    assert X.shape == (20_000, 200) and (y < 0).sum() == 4000
    neg, pos = X[y < 0].astype(float), X[y > 0].astype(float)
    np.testing.assert_allclose(neg.mean(0), 0, atol=0.06)
    np.testing.assert_allclose(pos.mean(0), np.r_[np.ones(10), np.zeros(190)], atol=0.04)
    emp = np.cov(pos[:, :12].T)
    np.testing.assert_allclose(emp, g.covariance()[:12, :12], atol=0.03)
    assert g.true_support().sum() == 10 and g.true_support()[:10].all()


def test_bayes_direction_has_eleven_nonzeros():
    # Sigma is 0.5 * AR(1) with rho = 0.25: its inverse is tridiagonal, so Sigma^-1 mu puts weight on
    # coordinate 11 too: -rho / (1 - rho^2) / 0.5 times mu_10 = -0.5333...
    w = g.bayes_direction()
    assert int((np.abs(w) > 1e-9).sum()) == 11
    assert w[10] == pytest.approx(-0.25 / (1 - 0.0625) / 0.5)
    assert w[4] == pytest.approx((1 + 0.0625 - 2 * 0.25) / (1 - 0.0625) / 0.5)


def test_sorts_and_iterations_reach_the_top_k_sum():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(600)
    exact = float(np.sort(values)[-5:].sum())
    assert tolerance.bubble_sort_topk_sum(values.tolist(), 5) == pytest.approx(exact)
    assert tolerance.heap_sort_topk_sum(values.tolist(), 5) == pytest.approx(exact)
    t = torch.from_numpy(values)
    for method in ("atk", "stk"):
        res = tolerance.iterate_topk_sum(t, 5, method, tol=1e-2, lr=1e-2)
        assert res["converged"] and abs(res["value"] - exact) < 1e-2
    with pytest.raises(ValueError, match="method"):
        tolerance.iterate_topk_sum(t, 5, "heap")


def test_table9_column_is_the_papers():
    # the paper prints german 1000 x 24 and spambase 4601 rows (not KEEL's 1000 x 20 and 4597)
    assert PAPER_TABLE9["german"] == (1000, 24) and PAPER_TABLE9["spambase"] == (4601, 57)
    shapes = {"german": [1000, 20, 61], "spambase": [4597, 57, 57], "wisconsin": [683, 9, 9]}
    table = report.table9_rows(shapes)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert rows["german"][:3] == ["1000 x 24", "1000 x 20 (encoded to 61 columns)", "**no**"]
    assert "german.data-numeric" in rows["german"][3]
    assert rows["spambase"][:3] == ["4601 x 57", "4597 x 57", "**no**"]
    assert rows["wisconsin"][:3] == ["683 x 9", "683 x 9", "yes"] and rows["wisconsin"][3] == ""
    assert rows["appendicitis"][0] == "106 x 7" and "not available" in rows["appendicitis"][3]
    assert set(DATA_DIFFERENCES) == {"german", "spambase"}


def test_comparison_shows_z_scores_and_counts_wins_on_both_sides():
    # ours: ST_k best on australian, Average best on wisconsin (paper: ST_k best on both)
    means = {"australian": {"average": 14.0, "maximum": 40.0, "atk": 14.5, "matk": 14.2, "stk": 13.0},
             "wisconsin": {"average": 2.5, "maximum": 30.0, "atk": 3.0, "matk": 3.1, "stk": 2.9}}
    summary = {"rows": [{"dataset": d, "loss": "logistic", "method": m, "mean": v, "std": 0.5, "n_repeats": 3}
                        for d, ms in means.items() for m, v in ms.items()]}
    out = report.comparison(summary, "logistic", ("australian", "wisconsin"),
                            ("average", "maximum", "atk", "matk", "stk"), 2)
    c = out["counts"]
    assert (c["ours_stk_best"], c["ours_datasets"], c["paper_stk_best"], c["paper_stk_best_same"]) == (1, 2, 2, 2)
    assert c["agree"] == 1 and c["ours_best"] == {"ST_k": 1, "Average": 1}
    p_mean, p_std = paper.TABLE3_LOGISTIC["australian"]["stk"]
    z = (13.0 - p_mean) / p_std
    line = next(l for l in out["table"].splitlines() if "ST_k" in l and "13.00" in l)
    assert f"{z:+.2f}" in line and f"{13.0 - p_mean:+.2f}" in line
    assert math.isclose(report.z_score(3.0, 2.0, 0.5), 2.0)
    assert report.z_score(float("nan"), 2.0, 0.5) is None


def test_partial_grid_is_summarised_over_the_finished_cells_with_the_papers_selection(tmp_path):
    from stk_nmt.experiments.files import write_json
    from stk_nmt.experiments.table_runs import summarize

    def config(val, test, stopped=True):
        return {"k": 0.5, "C": 1.0, "lr": 0.1, "delta": 0.01, "val": val, "val_loss": 0.3, "test": test,
                "stopped_early": stopped}

    cells = tmp_path / "cells"
    # two of three repeats of ST_k finished, none of AT_k. Config 0 wins split 0 (val 1 < 3) but config 1
    # has the better mean validation error (3 + 2 < 1 + 5): the paper's selection takes config 1.
    grids = [[config(1.0, 10.0), config(3.0, 20.0, stopped=False)],
             [config(5.0, 14.0), config(2.0, 16.0)]]
    for r, grid in enumerate(grids):
        write_json(cells / f"wisconsin__logistic__stk__{r}.json",
                   {"repeat": r, "seconds": 5.0, "selected": min(grid, key=lambda c: c["val"]), "grid": grid})
    s = summarize(cells, ["wisconsin"], ["logistic"], ["atk", "stk"], 3)
    assert (s["cells_done"], s["cells_total"], s["complete"]) == (2, 6, False)
    rows = {r["method"]: r for r in s["rows"]}
    assert rows["stk"]["n_repeats"] == 2 and rows["stk"]["mean"] == 18.0 and rows["stk"]["std"] == 2.0
    assert rows["stk"]["per_split_mean"] == 13.0  # per split: config 0 (10), then config 1 (16)
    assert rows["stk"]["tests"] == [20.0, 16.0] and rows["stk"]["repeats"] == [0, 1]  # config 1, split by split
    assert rows["stk"]["selected_hit_epoch_cap"] == 1
    assert rows["atk"]["n_repeats"] == 0 and math.isnan(rows["atk"]["mean"])
    assert s["training_seconds"] == 10.0
    # on common repeats only: AT_k has none, so ST_k's two repeats are left out as well
    s = summarize(cells, ["wisconsin"], ["logistic"], ["atk", "stk"], 3, common_repeats=True)
    assert [r["n_repeats"] for r in s["rows"]] == [0, 0] and (s["cells_done"], s["cells_finished"]) == (0, 2)


def test_gaussian_training_checks_its_arguments():
    X, y = g.sample(200, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="eval_every"):
        g.train(X, y, X, y, "average", eval_every=0)
    with pytest.raises(ValueError, match="method"):
        g.train(X, y, X, y, "median")
    fit = g.train(X, y, X, y, "stk_srelu", max_steps=30, patience=20, eval_every=10)
    assert fit["steps"] == 30 and fit["best_step"] % 10 == 0 and fit["w"].shape == (200,)


def test_timing_prose_states_the_measured_ratios():
    # The template writes the sentences; the numbers come from the run's JSON.
    heap_paper = paper.TABLE1_SECONDS["HeapSort"][0]

    def method(seconds, iterations=None):
        return {"seconds_mean": seconds, "seconds_std": 0.0, "runs": 1, "iterations_mean": iterations}

    rows = [{"n": n, "k": 5, "rounds": 5, "seconds": {"atk_heap": 9.0, "atk_sort": 3.0, "atk_topk": 1.5,
                                                      "stk_naive": 2.0, "stk_fused": 1.0, "mean": 0.5}}
            for n in (10_000, 100_000)]
    timing = {"k": 5, "torch": "x", "threads": 1, "load_average_1min": [0.5, 0.5], "cpu_count": 2, "rows": rows,
              "to_tolerance": {"n": 10_000, "k": 5, "tol": 1e-2, "lr": 1e-3,
                               "methods": {"heap": method(2 * heap_paper), "atk": method(0.3, 400),
                                           "stk": method(0.1, 390)}}}
    page = report.render_page({"timing": timing}, {}, "smoke", 0)
    assert "Our AT_k / ST_k time ratio to the tolerance is 3.00x (paper " \
           f"{paper.TABLE1_SECONDS['AT_k'][0] / paper.TABLE1_SECONDS['ST_k'][0]:.1f}x), with 400 and 390 iterations" in page
    assert "Our pure-Python HeapSort is slower than the paper's" in page
    assert ("Per pass, at n = 10,000 AT_k by torch.topk takes 1.50x and by sorting 3.00x the time of the fused ST_k; "
            "at n = 100,000 AT_k by torch.topk takes 1.50x") in page
