"""docs/results.md from the JSON outputs of the examples, beside every number the paper prints.

The numbers and tables are computed here; the prose is the Jinja2 template
templates/results.md.j2. Each paper number comes from paper.py; a difference is shown in points
and in units of the paper's standard deviation, z = (ours - paper) / paper std.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import jinja2
import numpy as np
from tabulate import tabulate

from . import paper
from .datasets import (CLASSIFICATION_MISSING, DATA_DIFFERENCES, PAPER_TABLE9, REGRESSION_MISSING, SINC_NOISE,
                       SPLIT_FRACTIONS, sinc_oracle_rmse)
from ..stats import POWER, detectable_difference, paired_ttest
from .significance import ALPHA, holm, paired_comparisons
from .tabular import METHOD_LABELS

TEMPLATES = Path(__file__).resolve().parent / "templates"
ALL_CLASSIFICATION = ("appendicitis", "australian", "german", "phoneme", "spambase", "titanic", "wisconsin")
ALL_REGRESSION = ("sinc", "housing", "abalone", "cpusmall")


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    return tabulate(rows, headers=list(header), tablefmt="github", disable_numparse=True)


def pm(mean: float, std: float, digits: int) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def z_score(ours: float, paper_mean: float, paper_std: float) -> Optional[float]:
    """(ours - paper) in units of the paper's standard deviation; None when either is missing."""
    if ours is None or not math.isfinite(ours) or not paper_std:
        return None
    return (ours - paper_mean) / paper_std


def _z(z: Optional[float]) -> str:
    return "-" if z is None else f"{z:+.2f}"


def best_method(means: Dict[str, float]) -> List[str]:
    """The methods with the lowest mean (ties: all of them); nan means are ignored."""
    finite = {m: v for m, v in means.items() if v is not None and math.isfinite(v)}
    if not finite:
        return []
    low = min(finite.values())
    return [m for m, v in finite.items() if v == low]


def data_note(dataset: str) -> str:
    if dataset in DATA_DIFFERENCES:
        return "data differ: " + DATA_DIFFERENCES[dataset]
    missing = {**CLASSIFICATION_MISSING, **REGRESSION_MISSING}
    if dataset in missing:
        return "not available offline: " + missing[dataset]
    return ""


def comparison(summary: Optional[dict], loss: str, datasets: Sequence[str], methods: Sequence[str],
               digits: int) -> dict:
    """Long table dataset x method: ours, paper, difference, z; and where each side's best is."""
    published = paper.PAPER_TABLES[("classification" if loss in ("logistic", "hinge") else "regression", loss)]
    rows, notes, counts = [], {}, {"ours_stk_best": 0, "ours_datasets": 0, "paper_stk_best": 0,
                                   "paper_stk_best_same": 0, "paper_datasets": 0, "agree": 0,
                                   "ours_best": {}, "z": []}
    ours_rows = {(r["dataset"], r["method"]): r for r in (summary or {}).get("rows", []) if r["loss"] == loss}
    for d in datasets:
        p = published.get(d, {})
        o = {m: ours_rows[(d, m)] for m in methods if (d, m) in ours_rows and ours_rows[(d, m)]["n_repeats"]}
        # Only a dataset where every aggregate has finished has a "best" (a partial grid has none).
        ours_best = best_method({m: r["mean"] for m, r in o.items()}) if len(o) == len(methods) else []
        paper_best = best_method({m: p[m][0] for m in methods if m in p})
        if p:
            counts["paper_datasets"] += 1
            counts["paper_stk_best"] += "stk" in paper_best
        if o and len(o) == len(methods):
            counts["ours_datasets"] += 1
            counts["ours_stk_best"] += "stk" in ours_best
            for m in ours_best:
                counts["ours_best"][METHOD_LABELS[m]] = counts["ours_best"].get(METHOD_LABELS[m], 0) + 1
            if p:
                counts["paper_stk_best_same"] += "stk" in paper_best
                counts["agree"] += bool(set(ours_best) & set(paper_best))
        name = d + (" †" if data_note(d) else "")
        if data_note(d):
            notes[d] = data_note(d)
        for m in methods:
            r = o.get(m)
            ours = pm(r["mean"], r["std"], digits) if r else "not run"
            if r and m in ours_best:
                ours = f"**{ours}**"
            pp = pm(*p[m], digits) if m in p else "-"
            if m in paper_best:
                pp = f"**{pp}**"
            diff = f"{r['mean'] - p[m][0]:+.{digits}f}" if r and m in p else "-"
            z = z_score(r["mean"], *p[m]) if r and m in p else None
            if z is not None:
                counts["z"].append(abs(z))
            reps = str(r["n_repeats"]) if r else "-"
            rows.append([name, METHOD_LABELS[m], ours, reps, pp, diff, _z(z)])
            name = ""
    counts["ours_best"] = dict(sorted(counts["ours_best"].items(), key=lambda kv: -kv[1]))
    z = counts.pop("z")
    counts["median_abs_z"] = statistics.median(z) if z else None
    counts["within_1"] = sum(v <= 1 for v in z)
    counts["n_z"] = len(z)
    header = ["dataset", "method", "ours", "repeats", f"paper ({paper.TABLE_NAMES[loss]})", "ours - paper",
              "z = diff / paper std"]
    return {"table": md_table(header, rows), "notes": notes, "counts": counts}


def significance(summary: dict, loss: str, datasets: Sequence[str], methods: Sequence[str],
                 reference: str = "stk", digits: int = 2) -> dict:
    """reference against every other method, paired by split (significance.paired_comparisons): a long
    table of the mean difference, p, Holm-adjusted p, the smallest difference the test detects at 80%
    power (at alpha and at alpha / m, Holm's strictest step) and the verdict; and, per other method
    the reference is never significantly lower than, the range of those detectable differences beside
    the paper's own gap (so that "not significant" is read as what it is, not as "no gain")."""
    ratio = SPLIT_FRACTIONS[2] / SPLIT_FRACTIONS[0]
    rows = [r for r in summary.get("rows", []) if r["loss"] == loss]
    found = {(c["dataset"], c["other"]): c for c in paired_comparisons(rows, reference, ratio)}
    m = len(found)
    strict = ALPHA / m if m else ALPHA
    published = paper.PAPER_TABLES[("classification" if loss in ("logistic", "hinge") else "regression", loss)]
    others = [o for o in methods if o != reference]
    for c in found.values():
        c["detectable"] = detectable_difference(c["sd"], c["n"], alpha=ALPHA, test_train_ratio=ratio)
        c["detectable_strict"] = detectable_difference(c["sd"], c["n"], alpha=strict, test_train_ratio=ratio)
    table, lower, higher = [], [], []
    for d in datasets:
        for o in others:
            c = found.get((d, o))
            if c is None:
                continue
            if c["verdict"] == "no difference":
                verdict = f"no significant difference (detectable: {c['detectable_strict']:.{digits}f} points)"
            else:
                verdict = f"**{METHOD_LABELS[reference]} {c['verdict']}**"
                (lower if c["verdict"] == "lower" else higher).append(f"{d} vs {METHOD_LABELS[o]}")
            table.append([d, METHOD_LABELS[o], str(c["n"]), f"{c['mean']:+.{digits}f}", f"{c['p']:.3f}",
                          f"{c['p_holm']:.3f}", f"{c['detectable']:.{digits}f}", verdict])
    header = ["dataset", f"{METHOD_LABELS[reference]} against", "splits",
              f"{METHOD_LABELS[reference]} - other (points)", "p", "Holm p",
              f"detectable at {ALPHA:g}", "verdict (Holm; detectable at alpha/m)"]
    never_lower = []
    for o in others:
        cs = [c for (d, other), c in found.items() if other == o]
        if not cs or any(c["verdict"] == "lower" for c in cs):
            continue
        # the paper's own gap (other - reference) on each compared dataset, beside what the test could detect
        pairs = [(published[d][o][0] - published[d][reference][0], c["detectable_strict"])
                 for (d, other), c in found.items() if other == o and d in published]
        gaps = [gap for gap, _ in pairs]
        detectable = [c["detectable_strict"] for c in cs]
        smaller = sum(gap < detect for gap, detect in pairs)
        never_lower.append({"label": METHOD_LABELS[o], "n": len(cs), "detectable_min": min(detectable),
                            "detectable_max": max(detectable), "paper_gap_min": min(gaps) if gaps else None,
                            "paper_gap_max": max(gaps) if gaps else None, "paper_gaps_below": smaller,
                            "n_paper": len(gaps)})
    return {"table": md_table(header, table), "lower": lower, "higher": higher, "n_tests": m,
            "alpha": ALPHA, "alpha_strict": strict, "ratio": ratio, "never_lower": never_lower,
            "power": POWER}


def closeness(summary: dict, loss: str, datasets: Sequence[str], methods: Sequence[str],
              reference: str = "stk", paper_repeats: int = 50) -> dict:
    """How close is close: per dataset, the binomial floor of the test split (the std of a test error
    from test-set sampling alone, at our reference error rate) beside the paper's and our stds and the
    standard error of our mean; per cell, the difference ours - paper against its standard error
    sqrt(our sd^2 / J + paper sd^2 / 50) (sds with ddof 1 on our side; the paper's as printed)."""
    published = paper.PAPER_TABLES[("classification" if loss in ("logistic", "hinge") else "regression", loss)]
    by_key = {(r["dataset"], r["method"]): r for r in summary.get("rows", [])
              if r["loss"] == loss and r.get("tests")}
    shapes = summary.get("shapes", {})
    per_dataset, cells = [], []
    for d in datasets:
        ref = by_key.get((d, reference))
        if ref is None or d not in shapes or d not in published:
            continue
        n = shapes[d][0]
        n_test = n - int(round(SPLIT_FRACTIONS[0] * n)) - int(round(SPLIT_FRACTIONS[1] * n))
        rate = ref["mean"] / 100.0
        floor = 100.0 * math.sqrt(rate * (1.0 - rate) / n_test)
        J = len(ref["tests"])
        sd = float(np.std(ref["tests"], ddof=1))
        pstd = [published[d][o][1] for o in methods if o != "maximum" and o in published[d]]
        per_dataset.append([d, str(n_test), f"{floor:.2f}", f"{published[d][reference][1]:.2f}",
                            f"{min(pstd):.2f}-{max(pstd):.2f}", f"{sd:.2f}", f"{sd / math.sqrt(J):.2f}"])
        for o in methods:
            r = by_key.get((d, o))
            if r is None or o not in published[d]:
                continue
            pm_, ps = published[d][o]
            J = len(r["tests"])
            se = math.sqrt(float(np.var(r["tests"], ddof=1)) / J + ps ** 2 / paper_repeats)
            diff = r["mean"] - pm_
            cells.append({"dataset": d, "method": o, "diff": diff, "se": se, "z": diff / ps, "paper_std": ps,
                          "below_floor": ps < floor})
    n_cells = len(cells)
    within = {k: sum(abs(c["diff"]) <= k * c["se"] for c in cells) for k in (1, 2)}
    z_within_1 = sum(abs(c["z"]) <= 1 for c in cells)
    below_floor = sorted({c["dataset"] for c in cells if c["below_floor"] and c["method"] == reference})
    se_in_paper_std = [c["se"] / c["paper_std"] for c in cells if c["method"] != "maximum"]
    # Where our reference matches the paper's (within 2 SE) while our baselines beat the paper's by more
    # than 2 SE: the paper's edge there comes from its baselines, not from the reference.
    weak = []
    by_cell = {(c["dataset"], c["method"]): c for c in cells}
    for d in datasets:
        ref = by_cell.get((d, reference))
        if ref is None or abs(ref["diff"]) > 2 * ref["se"]:
            continue
        better = [(METHOD_LABELS[o], -by_cell[(d, o)]["diff"], published[d][o][0] - published[d][reference][0])
                  for o in methods
                  if o not in (reference, "maximum") and (d, o) in by_cell
                  and -by_cell[(d, o)]["diff"] > 2 * by_cell[(d, o)]["se"]]
        if better:
            weak.append({"dataset": d, "ours": by_key[(d, reference)]["mean"], "paper": published[d][reference][0],
                         "better": better})
    header = ["dataset", "test split", f"binomial floor at our {METHOD_LABELS[reference]} error",
              f"paper std, {METHOD_LABELS[reference]}", "paper std, other aggregates",
              f"our std, {METHOD_LABELS[reference]} (ddof 1)", f"SE of our {METHOD_LABELS[reference]} mean"]
    return {"table": md_table(header, per_dataset), "n_cells": n_cells, "within_1se": within[1],
            "within_2se": within[2], "z_within_1": z_within_1, "below_floor": below_floor,
            "se_in_paper_std_min": min(se_in_paper_std) if se_in_paper_std else None,
            "se_in_paper_std_max": max(se_in_paper_std) if se_in_paper_std else None,
            "paper_repeats": paper_repeats, "weak_baselines": weak}


def table9_rows(shapes: Dict[str, list]) -> str:
    rows = []
    for d in ALL_REGRESSION + ALL_CLASSIFICATION:
        pn, pd_ = PAPER_TABLE9[d]
        if d in shapes:
            n, a, width = shapes[d]
            ours = f"{n} x {a}" + (f" (encoded to {width} columns)" if width != a else "")
            same = "yes" if (n, a) == (pn, pd_) else "**no**"
        else:
            ours, same = "-", "-"
        rows.append([d, f"{pn} x {pd_}", ours, same, data_note(d)])
    return md_table(["dataset", "paper Table 9 (n x d)", "ours (n x attributes)", "same", "note"], rows)


def _paired(a: Dict[str, float], b: Dict[str, float]) -> Optional[dict]:
    """Paired t-test of a - b over the repeats both have (the repeats are independent draws of the data)."""
    common = sorted(set(a) & set(b), key=int)
    return paired_ttest([a[r] - b[r] for r in common])


def _by_repeat(row: dict, field: int) -> Dict[str, float]:
    return {r: v[field] for r, v in row.get("by_repeat", {}).items()}


def gaussian_tables(res: dict, sensitivity: Optional[dict] = None) -> dict:
    """Table 2 and Figure 4 beside the paper, the Bayes ceilings, whether the top of Table 2 is
    separated (paired over repeats), the patience-sensitivity rows, and the paper's claim that ST_k is
    less sensitive to the imbalance ratio, tested on the accuracy and ParaF1 drop from the most
    balanced to the most imbalanced ratio (paired over repeats, Holm-adjusted)."""
    from .gaussian import FIGURE4_METHODS, TABLE2_METHODS

    t2 = {r["method"]: r for r in res["table2"]}
    rows = []
    for m, (label, _, _) in TABLE2_METHODS.items():
        r, p = t2.get(m), paper.TABLE2[m]
        if r is None:
            rows.append([label, "not run", f"{p['accuracy']:.3f}", "-", "-", f"{p['para_f1']:.4f}", "-", "-", "-", "-",
                         f"{p['seconds']:.3f}"])
            continue
        rows.append([label, pm(r["accuracy_mean"], r["accuracy_std"], 2), f"{p['accuracy']:.3f}",
                     f"{r['accuracy_mean'] - p['accuracy']:+.2f}", pm(r["para_f1_mean"], r["para_f1_std"], 3),
                     f"{p['para_f1']:.4f}", f"{r['para_f1_mean'] - p['para_f1']:+.3f}",
                     f"{r['steps_mean']:.0f} / {r.get('best_step_mean', float('nan')):.0f}",
                     f"{r.get('stopped_early', r['n_repeats'])} of {r['n_repeats']}",
                     f"{r['seconds_mean']:.2f}", f"{p['seconds']:.3f}"])
    table2 = md_table(["method", "accuracy % (ours)", "paper", "ours - paper", "ParaF1 (ours)", "paper",
                       "ours - paper", "steps / best step (mean)", "stopped by the rule", "seconds (ours)",
                       "paper s"], rows)
    ranked = sorted(t2.values(), key=lambda r: -r["accuracy_mean"])
    top = None
    if len(ranked) >= 2:
        test = _paired(_by_repeat(ranked[0], 0), _by_repeat(ranked[1], 0))
        top = {"first": ranked[0]["label"], "second": ranked[1]["label"],
               "gap": ranked[0]["accuracy_mean"] - ranked[1]["accuracy_mean"], "test": test}
    best_f1 = max(t2.values(), key=lambda r: r["para_f1_mean"])["label"] if t2 else "-"
    sens = None
    if sensitivity and sensitivity.get("table2"):
        s2 = {r["method"]: r for r in sensitivity["table2"]}
        common = [m for m in TABLE2_METHODS if m in t2 and m in s2]
        # the repeats every method of both runs has: the two rankings are over the same data
        reps = sorted(set.intersection(*(set(t2[m]["by_repeat"]) & set(s2[m]["by_repeat"]) for m in common)),
                      key=int) if common else []

        def mean(row, field):
            return float(np.mean([row["by_repeat"][r][field] for r in reps])) if reps else float("nan")

        order = {key: [(TABLE2_METHODS[m][0], mean(rr[m], 0)) for m in sorted(common, key=lambda m: -mean(rr[m], 0))]
                 for key, rr in (("base", t2), ("long", s2))}
        tops = {key: {label for label, v in o if v == o[0][1]} for key, o in order.items()}  # ties: all of them
        srows = [[TABLE2_METHODS[m][0], str(len(reps)), f"{mean(t2[m], 0):.2f}", f"{mean(s2[m], 0):.2f}",
                  f"{mean(t2[m], 1):.3f}", f"{mean(s2[m], 1):.3f}", f"{mean(t2[m], 2):.0f}", f"{mean(s2[m], 2):.0f}"]
                 for m in common]
        p0, p1 = res["patience_steps"], sensitivity["patience_steps"]
        sens = {"table": md_table(["method", "repeats in both", f"accuracy %, window {p0}",
                                   f"accuracy %, window {p1}", f"ParaF1, window {p0}", f"ParaF1, window {p1}",
                                   f"steps, window {p0}", f"steps, window {p1}"], srows),
                "patience": p1, "order_base": order["base"], "order_long": order["long"],
                "same_top": tops["base"] == tops["long"],
                "same_order": [l for l, _ in order["base"]] == [l for l, _ in order["long"]],
                "repeats": sensitivity.get("repeats_done", sensitivity["repeats"])}
    f4 = {(r["method"], r["neg_ratio"]): r for r in res["figure4"]}
    ratios = sorted({r["neg_ratio"] for r in res["figure4"]}, reverse=True)
    rows = []
    for ratio in ratios:
        row = [f"{ratio:g}"]
        i = paper.FIGURE4_RATIOS.index(ratio) if ratio in paper.FIGURE4_RATIOS else None
        for m in FIGURE4_METHODS:
            r = f4.get((m, ratio))
            pa = paper.FIGURE4_READ["accuracy"].get(m)
            pf = paper.FIGURE4_READ["para_f1"].get(m)
            row.append("-" if r is None else f"{pm(r['accuracy_mean'], r['accuracy_std'], 1)} / {r['para_f1_mean']:.3f}")
            row.append(f"{pa[i]:.1f} / {pf[i]:.2f}" if i is not None and pa else
                       (f"- / {pf[i]:.2f}" if i is not None and pf else "-"))
        rows.append(row)
    header = ["negative ratio"]
    for m in FIGURE4_METHODS:
        header += [f"{TABLE2_METHODS[m][0]} ours (acc / ParaF1)", "paper, read off"]
    return {"table2": table2, "figure4": md_table(header, rows), "top": top, "best_f1_ours": best_f1,
            "sensitivity": sens, "imbalance": imbalance_sensitivity(res)}


def imbalance_sensitivity(res: dict, reference: str = "stk_srelu") -> Optional[dict]:
    """The paper's "ST_k is less sensitive to the imbalance ratio": per repeat, each Figure 4 method's
    drop in accuracy and ParaF1 from the most balanced to the most imbalanced ratio; the reference's
    drop minus each other method's, paired t-test over repeats, Holm over the comparisons, and the
    difference each test detects at 80% power at alpha / m. None without two ratios and two repeats."""
    from .gaussian import FIGURE4_METHODS, TABLE2_METHODS

    f4 = {(r["method"], r["neg_ratio"]): r for r in res["figure4"]}
    ratios = sorted({r["neg_ratio"] for r in res["figure4"]})
    if len(ratios) < 2 or reference not in FIGURE4_METHODS:
        return None
    lo, hi = ratios[0], ratios[-1]
    drops = {}
    for m in FIGURE4_METHODS:
        if (m, lo) not in f4 or (m, hi) not in f4:
            return None
        a, b = f4[(m, hi)]["by_repeat"], f4[(m, lo)]["by_repeat"]
        drops[m] = {r: [a[r][f] - b[r][f] for f in (0, 1)] for r in set(a) & set(b)}
    comparisons = []
    for o in FIGURE4_METHODS:
        if o == reference:
            continue
        reps = sorted(set(drops[reference]) & set(drops[o]), key=int)
        for f, name, unit in ((0, "accuracy", "points"), (1, "ParaF1", "")):
            test = paired_ttest([drops[reference][r][f] - drops[o][r][f] for r in reps])
            if test is None:
                return None
            comparisons.append({"other": TABLE2_METHODS[o][0], "metric": name, "unit": unit, "n": len(reps),
                                "ref_drop": float(np.mean([drops[reference][r][f] for r in reps])),
                                "other_drop": float(np.mean([drops[o][r][f] for r in reps])), **test})
    m = len(comparisons)
    for c, adjusted in zip(comparisons, holm([c["p"] for c in comparisons])):
        c["p_holm"] = adjusted
        c["detectable"] = detectable_difference(c["sd"], c["n"], alpha=ALPHA / m)
        c["verdict"] = ("smaller" if adjusted < ALPHA and c["mean"] < 0 else
                        "larger" if adjusted < ALPHA else "no significant difference")
    claims = {}
    for metric in ("accuracy", "ParaF1"):
        cs = [c for c in comparisons if c["metric"] == metric]
        claims[metric] = ("holds" if all(c["verdict"] == "smaller" for c in cs) else
                          "does not hold" if any(c["verdict"] == "larger" for c in cs) else "is not shown")
    return {"reference": TABLE2_METHODS[reference][0], "balanced": hi, "imbalanced": lo, "comparisons": comparisons,
            "m": m, "claim": claims["accuracy"], "claims": claims, "n": min(c["n"] for c in comparisons)}


def timing_tables(res: dict) -> dict:
    names = ["atk_heap", "atk_sort", "atk_topk", "stk_naive", "stk_fused", "mean"]
    labels = {"atk_heap": "AT_k heap", "atk_sort": "AT_k sort", "atk_topk": "AT_k topk",
              "stk_naive": "ST_k autograd", "stk_fused": "ST_k fused", "mean": "Average"}
    per_pass = md_table(["n"] + [labels[m] for m in names], [
        [f"{r['n']:,}"] + [f"{r['seconds'][m] * 1e3:.3f} ({r['seconds'][m] / r['seconds']['stk_fused']:.2f}x)"
                           for m in names] for r in res["rows"]])
    tol = res.get("to_tolerance")
    table1, to_tol = None, None
    if tol:
        ours = tol["methods"]
        mapping = [("BubbleSort", "bubble"), ("HeapSort", "heap"), ("AT_k", "atk"), ("ST_k", "stk")]
        rows = []
        for label, key in mapping:
            pmean, pstd = paper.TABLE1_SECONDS[label]
            o = ours.get(key)
            if o is None:
                rows.append([label, "not run in this mode", "-", "-", pm(pmean, pstd, 4),
                             f"{pmean / paper.TABLE1_SECONDS['ST_k'][0]:.1f}x", "-"])
                continue
            ratio = o["seconds_mean"] / ours["stk"]["seconds_mean"]
            iters = f"{o['iterations_mean']:.0f}" if o["iterations_mean"] else "-"
            rows.append([label, pm(o["seconds_mean"], o["seconds_std"], 4) + f" ({o['runs']} runs)", iters,
                         f"{ratio:.2f}x", pm(pmean, pstd, 4), f"{pmean / paper.TABLE1_SECONDS['ST_k'][0]:.1f}x",
                         _z(z_score(o["seconds_mean"], pmean, pstd))])
        a, st = ours["atk"], ours["stk"]
        to_tol = {"atk_over_stk": a["seconds_mean"] / st["seconds_mean"],
                  "paper_atk_over_stk": paper.TABLE1_SECONDS["AT_k"][0] / paper.TABLE1_SECONDS["ST_k"][0],
                  "atk_iterations": a["iterations_mean"], "stk_iterations": st["iterations_mean"],
                  # seconds per iteration, AT_k over ST_k: what one pass of each costs when iterating
                  "atk_over_stk_per_iteration": (a["seconds_mean"] / a["iterations_mean"])
                  / (st["seconds_mean"] / st["iterations_mean"])
                  if a["iterations_mean"] and st["iterations_mean"] else None}
        table1 = md_table(["method", "seconds (ours)", "iterations", "/ ST_k (ours)", "paper seconds",
                           "/ ST_k (paper)", "z"], rows)
    ratios = [{"n": r["n"], "topk": r["seconds"]["atk_topk"] / r["seconds"]["stk_fused"],
               "sort": r["seconds"]["atk_sort"] / r["seconds"]["stk_fused"]} for r in res["rows"]]
    return {"per_pass": per_pass, "table1": table1, "ratios": ratios, "to_tol": to_tol}


def load_note(load: float, cpu_count: int) -> str:
    """What a run's recorded load average says about the machine it shared (the page's wording)."""
    if load > cpu_count:
        return "above the core count: other jobs shared the CPU, so these times are upper bounds"
    return "at or below the core count"


def departures(cfg: dict) -> List[str]:
    """The page's "Departures from the paper", each computed from the configuration `cfg`:
    max_epochs, patience (validation checks, one per epoch), paper_patience_steps, min_gain, batch_size,
    n_examples ({dataset: rows}), selected_capped (or None), data_differences, missing, std_ddof, and
    gaussian (or None: max_steps, patience_steps, eval_every, capped, cells)."""
    out = []
    per_epoch = {d: math.ceil(int(round(SPLIT_FRACTIONS[0] * n)) / cfg["batch_size"])
                 for d, n in cfg["n_examples"].items()}
    if per_epoch:
        lo, hi = min(per_epoch, key=per_epoch.get), max(per_epoch, key=per_epoch.get)
        out.append(f"Early stopping (Tables 3, 4, 6): the paper stops when the validation gain stays below "
                   f"{cfg['min_gain']:g} for {cfg['paper_patience_steps']} \"steps\". We read a step as one "
                   f"validation check, made after every epoch, so the window is {cfg['patience']} epochs: "
                   f"{cfg['patience'] * per_epoch[lo]:,} optimizer steps on {lo} to "
                   f"{cfg['patience'] * per_epoch[hi]:,} on {hi} (batch {cfg['batch_size']}), where a reading in "
                   f"optimizer steps would stop after {cfg['paper_patience_steps']}.")
    capped = "" if cfg.get("selected_capped") is None else (
        f"; {cfg['selected_capped']} of the selected configurations' runs hit it")
    out.append(f"Epoch cap: at most {cfg['max_epochs']} epochs, a cap not in the paper's protocol{capped}.")
    for d, note in cfg["data_differences"].items():
        out.append(f"Data, {d}: {note}.")
    for d, why in cfg["missing"].items():
        out.append(f"Data, {d}: not run; {why}.")
    if cfg["std_ddof"] == 0:
        out.append("Standard deviations (ours, every table) are population stds over the repeats (ddof = 0); "
                   "the paper does not say which it prints. The sample std (ddof = 1) is sqrt(J / (J - 1)) "
                   f"times larger: {math.sqrt(50 / 49):.3f}x at J = 50.")
    else:
        out.append(f"Standard deviations (ours, every table) are over the repeats with ddof = {cfg['std_ddof']}; "
                   "the paper does not say which it prints.")
    gauss = cfg.get("gaussian")
    if gauss:
        every = "every step" if gauss["eval_every"] == 1 else f"every {gauss['eval_every']} steps"
        out.append(f"Table 2 and Figure 4: at most {gauss['max_steps']:,} Adam steps, a cap not in the paper's "
                   f"protocol ({gauss['capped']} of {gauss['cells']} runs hit it); the paper's window of "
                   f"{gauss['patience_steps']} steps is counted in optimizer steps, with validation checked {every}.")
    return out


def protocol_rows(classification: Optional[dict], full: Optional[dict]) -> str:
    from .table_runs import MODES
    from .tabular import GRIDS, grid

    def sizes(mode):
        return ", ".join(f"{METHOD_LABELS[m]} {len(grid(m, mode))}" for m in ("average", "atk", "stk"))

    rows = [
        ["repeats", "50", str(MODES["full"][2]), str(MODES["quick"][2])],
        ["early stopping", "validation gain < 1e-6 for 50 steps, roll back to the best",
         f"gain < 1e-6 for {MODES['full'][1]} checks (one per epoch), roll back",
         f"gain < 1e-6 for {MODES['quick'][1]} checks, roll back"],
        ["epoch cap", "none stated", str(MODES["full"][0]), str(MODES["quick"][0])],
        ["k", "{1} ∪ {0.1, ..., 1.0}", ", ".join(map(str, GRIDS["full"]["k"])), ", ".join(map(str, GRIDS["quick"]["k"]))],
        ["C", "1e0 ... 1e5", ", ".join(f"{c:g}" for c in GRIDS["full"]["C"]), ", ".join(f"{c:g}" for c in GRIDS["quick"]["C"])],
        ["eta", "0.1, 0.05, 0.01, 0.005, 0.001", ", ".join(map(str, GRIDS["full"]["lr"])), ", ".join(map(str, GRIDS["quick"]["lr"]))],
        ["delta", "0.1, 0.01, 0.001, 0.0001", ", ".join(map(str, GRIDS["full"]["delta"])), ", ".join(map(str, GRIDS["quick"]["delta"]))],
        ["grid size", "-", sizes("full"), sizes("quick")],
    ]
    return md_table(["", "paper (Section 5.1)", "ours, --mode full", "ours, --mode quick"], rows)


def _fmt_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else (f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s")


def sinc_floor(seed: int, repeats: int) -> dict:
    """What the sinc rows can reach: the RMSE of the exact sin(x)/x on each repeat's scaled targets
    (sinc is redrawn per repeat with seed + repeat), beside the range of the paper's sinc numbers and the
    floor it would have if the targets were scaled by the noise-free range of sin(x)/x instead."""
    floors = [sinc_oracle_rmse(seed=seed + r) for r in range(repeats)]
    published = [mean for loss in ("square", "absolute")
                 for mean, _ in paper.PAPER_TABLES[("regression", loss)]["sinc"].values()]
    clean_range = 1 - float(np.sinc(4.493409457909064 / np.pi))  # max 1 at 0, min at tan(x) = x
    return {"mean": float(np.mean(floors)), "std": float(np.std(floors)), "paper_min": min(published),
            "paper_max": max(published), "clean_range_floor": SINC_NOISE / clean_range}


def departures_config(results: dict, full_logistic: Optional[dict], gaussian: Optional[dict]) -> dict:
    """departures()'s configuration, read from the code's settings and the runs' records."""
    import inspect

    from .table_runs import MIN_GAIN, MODES, STD_DDOF
    from .tabular import train_grid

    bc = results.get("binary_classification") or {}
    shapes = (full_logistic or {}).get("shapes") or bc.get("shapes") or {}
    return {"max_epochs": MODES["full"][0], "patience": MODES["full"][1],
            "paper_patience_steps": paper.CLASSIFICATION_PROTOCOL["early_stop_steps"], "min_gain": MIN_GAIN,
            "batch_size": inspect.signature(train_grid).parameters["batch_size"].default,
            "n_examples": {d: v[0] for d, v in shapes.items()},
            "selected_capped": (full_logistic or {}).get("selected_capped"),
            "data_differences": DATA_DIFFERENCES, "missing": {**CLASSIFICATION_MISSING, **REGRESSION_MISSING},
            "std_ddof": STD_DDOF,
            "gaussian": None if not gaussian else {k: gaussian[k] for k in ("max_steps", "patience_steps",
                                                                            "eval_every", "capped", "cells")}}


def provenance_text(provenance: dict, verify: bool = True) -> str:
    """What the archived cells record about the code and the host that computed them: the page's
    sentences on whether repeats are comparable to the last bit, computed from the cells.
    verify: name cell_verify, which retrains the tabular grid's cells (not the Gaussian sweep's)."""
    n, code, hosts = provenance["repeats"], provenance["code"], provenance["cpu_capability"]
    one_known_version = len(code) == 1 and code[0]["value"]
    if one_known_version:
        text = f"The cells of all {n} repeats record the same code, {code[0]['value']}."
    elif len(code) == 1:
        text = (f"The cells of the {n} repeats do not record the code that trained them (cells written by "
                f"today's code do: `code`, stk_nmt/host.py), so whether it changed between repeats cannot be "
                f"read from the record.")
    else:
        known = [f"repeats {g['repeats']}: {g['value']}" for g in code if g["value"]]
        text = f"The cells record {len(known)} version{'s' if len(known) != 1 else ''} of the code ({'; '.join(known)})"
        text += "".join(f"; the cells of repeats {g['repeats']} do not record theirs" for g in code if not g["value"])
        text += "."
    if not one_known_version:
        text += (" Where the code may differ, the `seconds` of cells from different repeats are not comparable, "
                 "and an archived cell may not retrain to the last bit with today's code")
        text += (": the project tests a change to the grid's computation against the former computation to a "
                 "tolerance (tests/experiments/test_examples_batched.py), not bit for bit." if verify else ".")
    if verify:
        text += (" `python -m stk_nmt.experiments.cell_verify --archive ARCHIVE --repeat R --cells "
                 "dataset__loss__aggregate ...` retrains cells and names the first value that differs.")
    text += (" The last bits also depend on the host: torch picks its vectorised CPU kernels by the instruction "
             "set (AVX2, AVX-512, ...), and these round differently. ")
    recorded = [f"{g['value']} in repeats {g['repeats']}" for g in hosts if g["value"]]
    missing = [g["repeats"] for g in hosts if not g["value"]]
    if recorded:
        text += f"The cells record torch's CPU kernels ({'; '.join(recorded)})"
        text += f"; those of repeats {missing[0]} do not." if missing else "."
    else:
        text += f"The cells of the {n} repeats do not record torch's CPU kernels (today's cells do: `host`)."
    return text + (" cell_verify says whether an archived repeat's kernels match this machine's." if verify else "")


def render_page(results: dict, runtimes: Dict[str, float], mode: str, seed: int,
                full_logistic: Optional[dict] = None, total_seconds: Optional[float] = None,
                machine: Optional[dict] = None, gaussian_full: Optional[dict] = None,
                gaussian_sensitivity: Optional[dict] = None) -> str:
    """The whole page. full_logistic: the (possibly partial) summary of the background full-mode
    logistic grid, with `run_command` and `started_at`/`summarized_at` wall times when known.
    machine: cpu_count, nice and load_average_1min recorded by the run (None: not recorded).
    gaussian_full, gaussian_sensitivity: imbalance_sweep's full-mode results (the paper's window, and
    the longer window of the sensitivity rows), partial is fine; they replace the quick Table 2."""
    ctx = {"mode": mode, "seed": seed, "r": results, "paper": paper, "labels": METHOD_LABELS,
           "fmt_seconds": _fmt_seconds, "total_seconds": total_seconds, "runtimes": runtimes,
           "full": full_logistic, "machine": machine, "missing_classification": CLASSIFICATION_MISSING,
           "missing_regression": REGRESSION_MISSING, "differences": DATA_DIFFERENCES, "load_note": load_note}
    gauss_res = gaussian_full or results.get("imbalance_sweep")
    ctx["departures"] = departures(departures_config(results, full_logistic, gaussian_full))
    bc = results.get("binary_classification")
    if bc:
        ctx["table9"] = table9_rows(bc["shapes"])
        ctx["logistic"] = comparison(bc, "logistic", ALL_CLASSIFICATION, ("average", "maximum", "atk", "matk", "stk"), 2)
        ctx["hinge"] = comparison(bc, "hinge", ALL_CLASSIFICATION, ("average", "maximum", "atk", "matk", "stk"), 2)
    ctx["protocol"] = protocol_rows(bc, full_logistic)
    if full_logistic:
        ctx["full_table"] = comparison(full_logistic, "logistic", ALL_CLASSIFICATION,
                                       ("average", "maximum", "atk", "matk", "stk"), 2)
        ctx["full_significance"] = significance(full_logistic, "logistic", ALL_CLASSIFICATION,
                                                ("average", "maximum", "atk", "matk", "stk"))
        ctx["full_close"] = closeness(full_logistic, "logistic", ALL_CLASSIFICATION,
                                      ("average", "maximum", "atk", "matk", "stk"))
        if full_logistic.get("provenance"):
            ctx["full_provenance"] = provenance_text(full_logistic["provenance"])
    reg = results.get("regression")
    if reg:
        ctx["square"] = comparison(reg, "square", ALL_REGRESSION, ("average", "matk", "stk"), 4)
        ctx["absolute"] = comparison(reg, "absolute", ALL_REGRESSION, ("average", "matk", "stk"), 4)
        ctx["sinc"] = sinc_floor(reg["seed"], reg["repeats"])
        ours = [row["mean"] for row in reg["rows"] if row["dataset"] == "sinc" and row["n_repeats"]]
        ctx["sinc"]["ours_max_gap"] = max(ours) - ctx["sinc"]["mean"] if ours else float("nan")
    if gauss_res:
        ctx["g"] = gauss_res
        ctx["gauss"] = gaussian_tables(gauss_res, gaussian_sensitivity)
        if gauss_res.get("provenance"):
            ctx["gauss_provenance"] = provenance_text(gauss_res["provenance"], verify=False)
        if (gaussian_sensitivity or {}).get("provenance"):
            ctx["sensitivity_provenance"] = provenance_text(gaussian_sensitivity["provenance"], verify=False)
    if "timing" in results:
        ctx["timing"] = timing_tables(results["timing"])
    if "synthetic_2d" in results:
        s = results["synthetic_2d"]
        ctx["fig3"] = md_table(["", "w", "b", "angle to w* (deg)", "test accuracy"], [
            [("Bayes rule" if r["method"] == "bayes" else METHOD_LABELS[r["method"]]),
             f"[{r['w1']:.3f}, {r['w2']:.3f}]", f"{r['b']:.3f}", f"{r['angle_deg']:.2f}", f"{r['test_accuracy']:.4f}"]
            for r in s["rows"]])
    rows = []
    for name in ("synthetic_2d", "imbalance_sweep", "binary_classification", "regression", "timing"):
        res = results.get(name, {})
        cells = res.get("training_seconds", res.get("cell_seconds"))
        rows.append([f"examples/{name}.py", _fmt_seconds(runtimes[name]) if name in runtimes else "-",
                     _fmt_seconds(cells) if cells is not None else "-"])
    ctx["runtime_table"] = md_table(["example", f"wall-clock of its last run, {mode} mode",
                                     "training time summed over all its cells"], rows)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("results.md.j2").render(**ctx)
