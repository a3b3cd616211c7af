"""docs/results.md from the JSON outputs of the examples, beside every number the paper prints.

The numbers and tables are computed here; the prose is the Jinja2 template
templates/results.md.j2. Each paper number comes from paper.py; a difference is shown in points
and in units of the paper's standard deviation, z = (ours - paper) / paper std.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import jinja2
import numpy as np
from tabulate import tabulate

from . import paper
from .datasets import (CLASSIFICATION_MISSING, DATA_DIFFERENCES, PAPER_TABLE9, REGRESSION_MISSING, SINC_NOISE,
                       SPLIT_FRACTIONS, sinc_oracle_rmse)
from .significance import ALPHA, paired_comparisons
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
    counts["median_abs_z"] = sorted(z)[len(z) // 2] if z else None
    counts["within_1"] = sum(v <= 1 for v in z)
    counts["n_z"] = len(z)
    header = ["dataset", "method", "ours", "repeats", f"paper ({paper.TABLE_NAMES[loss]})", "ours - paper",
              "z = diff / paper std"]
    return {"table": md_table(header, rows), "notes": notes, "counts": counts}


def significance(summary: dict, loss: str, datasets: Sequence[str], methods: Sequence[str],
                 reference: str = "stk", digits: int = 2) -> dict:
    """reference against every other method, paired by split (significance.paired_comparisons):
    a table dataset x other method of "mean difference (p, Holm-adjusted p)", and the datasets and
    methods where the reference is significantly lower or higher."""
    ratio = SPLIT_FRACTIONS[2] / SPLIT_FRACTIONS[0]
    rows = [r for r in summary.get("rows", []) if r["loss"] == loss]
    found = {(c["dataset"], c["other"]): c for c in paired_comparisons(rows, reference, ratio)}
    others = [m for m in methods if m != reference]
    table, lower, higher = [], [], []
    for d in datasets:
        if not any((d, m) in found for m in others):
            continue
        cells = []
        for m in others:
            c = found.get((d, m))
            if c is None:
                cells.append("-")
                continue
            mark = "**" if c["verdict"] != "no difference" else ""
            cells.append(f"{mark}{c['mean']:+.{digits}f}{mark} (p {c['p']:.3f}, {c['p_holm']:.3f})")
            if c["verdict"] == "lower":
                lower.append(f"{d} vs {METHOD_LABELS[m]}")
            elif c["verdict"] == "higher":
                higher.append(f"{d} vs {METHOD_LABELS[m]}")
        n = max(found[(d, m)]["n"] for m in others if (d, m) in found)
        table.append([d, str(n), *cells])
    header = ["dataset", "splits", *(f"{METHOD_LABELS[reference]} - {METHOD_LABELS[m]}" for m in others)]
    # The aggregates the reference is never significantly lower than, on any dataset: no gain over them.
    compared = {o for _, o in found}
    gains = {o for (_, o), c in found.items() if c["verdict"] == "lower"}
    no_gain_over = [METHOD_LABELS[m] for m in others if m in compared and m not in gains]
    return {"table": md_table(header, table), "lower": lower, "higher": higher, "n_tests": len(found),
            "alpha": ALPHA, "ratio": ratio, "no_gain_over": no_gain_over}


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


def gaussian_tables(res: dict) -> dict:
    from .gaussian import FIGURE4_METHODS, TABLE2_METHODS

    t2 = {r["method"]: r for r in res["table2"]}
    rows = []
    for m, (label, _, _) in TABLE2_METHODS.items():
        r, p = t2.get(m), paper.TABLE2[m]
        if r is None:
            rows.append([label, "not run", "-", f"{p['accuracy']:.3f}", "-", "-", f"{p['para_f1']:.4f}", "-",
                         f"{p['seconds']:.3f}"])
            continue
        rows.append([label, pm(r["accuracy_mean"], r["accuracy_std"], 2), f"{p['accuracy']:.3f}",
                     f"{r['accuracy_mean'] - p['accuracy']:+.2f}", pm(r["para_f1_mean"], r["para_f1_std"], 3),
                     f"{p['para_f1']:.4f}", f"{r['para_f1_mean'] - p['para_f1']:+.3f}",
                     f"{r['seconds_mean']:.2f} ({r['steps_mean']:.0f} steps)", f"{p['seconds']:.3f}"])
    table2 = md_table(["method", "accuracy % (ours)", "paper", "ours - paper", "ParaF1 (ours)", "paper",
                       "ours - paper", "seconds (ours)", "paper s"], rows)
    best_acc_ours = max(t2.values(), key=lambda r: r["accuracy_mean"])["label"] if t2 else "-"
    best_f1_ours = max(t2.values(), key=lambda r: r["para_f1_mean"])["label"] if t2 else "-"
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
            row.append("-" if r is None else f"{r['accuracy_mean']:.1f} / {r['para_f1_mean']:.3f}")
            row.append(f"{pa[i]:.1f} / {pf[i]:.2f}" if i is not None and pa else
                       (f"- / {pf[i]:.2f}" if i is not None and pf else "-"))
        rows.append(row)
    header = ["negative ratio"]
    for m in FIGURE4_METHODS:
        header += [f"{TABLE2_METHODS[m][0]} ours (acc / ParaF1)", "paper, read off"]
    return {"table2": table2, "figure4": md_table(header, rows), "best_acc_ours": best_acc_ours,
            "best_f1_ours": best_f1_ours}


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
                  "atk_iterations": a["iterations_mean"], "stk_iterations": st["iterations_mean"]}
        table1 = md_table(["method", "seconds (ours)", "iterations", "/ ST_k (ours)", "paper seconds",
                           "/ ST_k (paper)", "z"], rows)
    ratios = [{"n": r["n"], "topk": r["seconds"]["atk_topk"] / r["seconds"]["stk_fused"],
               "sort": r["seconds"]["atk_sort"] / r["seconds"]["stk_fused"]} for r in res["rows"]]
    return {"per_pass": per_pass, "table1": table1, "ratios": ratios, "to_tol": to_tol}


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


def render_page(results: dict, runtimes: Dict[str, float], mode: str, seed: int,
                full_logistic: Optional[dict] = None, total_seconds: Optional[float] = None,
                machine: Optional[dict] = None) -> str:
    """The whole page. full_logistic: the (possibly partial) summary of the background full-mode
    logistic grid, with `run_command` and `started_at`/`summarized_at` wall times when known.
    machine: cpu_count, nice and load_average_1min recorded by the run (None: not recorded)."""
    ctx = {"mode": mode, "seed": seed, "r": results, "paper": paper, "labels": METHOD_LABELS,
           "fmt_seconds": _fmt_seconds, "total_seconds": total_seconds, "runtimes": runtimes,
           "full": full_logistic, "machine": machine, "missing_classification": CLASSIFICATION_MISSING,
           "missing_regression": REGRESSION_MISSING, "differences": DATA_DIFFERENCES}
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
    reg = results.get("regression")
    if reg:
        ctx["square"] = comparison(reg, "square", ALL_REGRESSION, ("average", "matk", "stk"), 4)
        ctx["absolute"] = comparison(reg, "absolute", ALL_REGRESSION, ("average", "matk", "stk"), 4)
        ctx["sinc"] = sinc_floor(reg["seed"], reg["repeats"])
        ours = [row["mean"] for row in reg["rows"] if row["dataset"] == "sinc" and row["n_repeats"]]
        ctx["sinc"]["ours_max_gap"] = max(ours) - ctx["sinc"]["mean"] if ours else float("nan")
    if "imbalance_sweep" in results:
        ctx["gauss"] = gaussian_tables(results["imbalance_sweep"])
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
