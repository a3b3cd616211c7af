"""Every example end to end in its seconds-long smoke mode, through make_results; the example files themselves
run as scripts."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stk_nmt.experiments import binary_classification, imbalance_sweep, make_results, regression, timing
from stk_nmt.experiments.datasets import CLASSIFICATION, DATA_DIFFERENCES, PAPER_TABLE9, REGRESSION
from stk_nmt.experiments.paper import FIG3_BAYES_B, FIG3_BAYES_W, TABLE3_LOGISTIC
from stk_nmt.experiments.table_runs import summarize
from stk_nmt.experiments.tabular import METHODS
from stk_nmt.host import describe_code

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("examples")
    out, docs = base / "results", base / "docs"
    page = make_results.main(["--mode", "smoke", "--out", str(out), "--docs", str(docs),
                                            "--full-logistic", "none", "--gaussian-full", "none"])
    return out, docs, page


def _json(out, name):
    return json.loads((out / f"{name}.json").read_text())


def _csv(out, name):
    with open(out / f"{name}.csv") as f:
        return list(csv.DictReader(f))


def test_no_examples_package():
    # fairseq's --user-dir must never be able to import a top-level `examples` package from the repo
    assert not (ROOT / "examples" / "__init__.py").exists()


def _script(args, cwd):
    done = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name", make_results.EXAMPLES + ("make_results",))
def test_example_scripts_are_thin_callers(name, tmp_path):
    # Each example is the package's command: same flags, no path tricks (run from elsewhere, it still works).
    source = (ROOT / "examples" / f"{name}.py").read_text()
    assert "sys.path" not in source and "spec_from_file_location" not in source
    assert f"from stk_nmt.experiments.{name} import main" in source
    assert "--mode {full,quick,smoke}" in _script([ROOT / "examples" / f"{name}.py", "--help"], cwd=tmp_path)


def test_make_results_script_renders_into_the_repository_defaults(run, tmp_path):
    # examples/make_results.py puts docs/ and results/ under the repository it lives in: a copy of the
    # script in a scratch "repository" re-renders the page there from the results the fixture made.
    out, docs, _ = run
    (tmp_path / "examples").mkdir()
    script = tmp_path / "examples" / "make_results.py"
    script.write_text((ROOT / "examples" / "make_results.py").read_text())
    _script([script, "--no-run", "--mode", "smoke", "--out", out, "--full-logistic", "none"], cwd=ROOT)
    assert (tmp_path / "docs" / "results.md").read_text() == (docs / "results.md").read_text()
    assert (tmp_path / "docs" / "img" / "timing.png").read_bytes()[:8] == PNG_MAGIC


def test_synthetic_prints_the_bayes_boundary(run):
    out, _, _ = run
    res = _json(out, "synthetic_2d")
    assert tuple(round(v, 3) for v in res["bayes"]["w"]) == FIG3_BAYES_W
    assert round(res["bayes"]["b"], 3) == FIG3_BAYES_B
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == {"bayes", "average", "atk", "matk", "stk"}
    # the Bayes rule is optimal: no trained boundary beats it by more than test-sampling noise
    for m in ("average", "atk", "matk", "stk"):
        assert 0.85 < rows[m]["test_accuracy"] <= rows["bayes"]["test_accuracy"] + 0.005
    assert {r["method"] for r in _csv(out, "synthetic_2d")} == set(rows)


def test_gaussian_sweep_covers_table2_and_figure4(run):
    out, _, _ = run
    res = _json(out, "imbalance_sweep")
    assert {r["method"] for r in res["table2"]} == {
        "average", "maximum", "atk", "matk", "stk_elu", "stk_softplus", "stk_leaky_relu", "stk_srelu"}
    assert all(r["neg_ratio"] == 0.2 for r in res["table2"])
    assert {(r["method"], r["neg_ratio"]) for r in res["figure4"]} == {
        (m, r) for m in ("stk_srelu", "atk", "average") for r in (0.5, 0.1, 0.05, 0.01, 0.005, 0.001)}
    for r in res["table2"] + res["figure4"]:
        assert 0 <= r["para_f1_mean"] <= 1 and 0 <= r["accuracy_mean"] <= 100
    assert res["bayes_nonzeros"] == 11


def test_the_gaussian_cells_record_their_code_and_host(run):
    # As the tabular cells do: whether two archived repeats can agree to the last bit depends on both.
    out, _, _ = run
    cells = sorted((out / "cells" / "gaussian-smoke-seed0").glob("*.json"))
    assert cells
    for path in cells:
        cell = json.loads(path.read_text())
        assert cell["code"] == describe_code()
        assert cell["host"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert cell["host"]["cores"] == os.cpu_count()


def test_the_gaussian_section_says_what_its_cells_record_about_code_and_host(run):
    # The results page's provenance paragraph covered the tabular grid only; the Gaussian section said
    # nothing of the code and kernels behind its cells.
    out, _, page = run
    res = _json(out, "imbalance_sweep")
    code = describe_code()
    name = f"package source `{code['source_sha256']}`"
    if code["commit"]:
        name += f" (commit `{code['commit'][:10]}`{', with local changes' if code['modified'] else ''})"
    repeats = "0" if res["repeats_done"] == 1 else f"0-{res['repeats_done'] - 1}"
    assert res["provenance"] == {"repeats": res["repeats_done"],
                                 "code": [{"value": name, "repeats": repeats, "count": res["repeats_done"]}],
                                 "cpu_capability": [{"value": torch.backends.cpu.get_cpu_capability(),
                                                     "repeats": repeats, "count": res["repeats_done"]}]}
    section = page.read_text().split("## Gaussian d = 200")[1].split("\n## ")[0]
    assert f"record the same code, {name}." in section
    assert f"torch's CPU kernels ({torch.backends.cpu.get_cpu_capability()} in repeats {repeats})" in section
    assert "cell_verify" not in section  # it retrains tabular cells only


def test_archived_gaussian_cells_that_record_nothing_are_said_to(tmp_path):
    # docs/results-cells/gaussian predates the cells' `code` and `host`: the page must say so.
    from stk_nmt.experiments.provenance import cell_provenance
    from stk_nmt.experiments.report import provenance_text
    cells = [{"method": "stk", "neg_ratio": 0.2, "repeat": r} for r in range(3)]
    provenance = cell_provenance(cells)
    assert provenance == {"repeats": 3, "code": [{"value": None, "repeats": "0-2", "count": 3}],
                          "cpu_capability": [{"value": None, "repeats": "0-2", "count": 3}]}
    text = provenance_text(provenance, verify=False)
    assert text.startswith("The cells of the 3 repeats do not record the code that trained them")
    assert "do not record torch's CPU kernels" in text and "cell_verify" not in text
    assert "test_examples_batched" not in text  # that test is about the tabular grid's computation


def test_binary_classification_table_is_complete(run):
    out, _, _ = run
    res = _json(out, "binary_classification")
    cells = {(r["dataset"], r["loss"], r["method"]) for r in _csv(out, "binary_classification")}
    assert cells == {(d, l, m) for d in CLASSIFICATION for l in ("logistic", "hinge") for m in METHODS}
    assert all(0 <= r["mean"] <= 100 for r in res["rows"])
    for d, (n, attributes, _) in res["shapes"].items():
        assert ((n, attributes) == PAPER_TABLE9[d]) == (d not in DATA_DIFFERENCES)


def test_regression_table_is_complete(run):
    out, _, _ = run
    rows = _csv(out, "regression")
    assert {(r["dataset"], r["loss"], r["method"]) for r in rows} == {
        (d, l, m) for d in REGRESSION for l in ("square", "absolute") for m in ("average", "matk", "stk")}
    assert all(0 < float(r["mean"]) < 1 for r in rows)  # RMSE on targets in [0, 1]
    assert set(_json(out, "regression")["missing"]) == {"abalone", "cpusmall"}


def test_timing_reports_every_method(run):
    out, _, _ = run
    res = _json(out, "timing")
    (row,) = res["rows"]
    assert (row["n"], row["k"]) == (10_000, 5)
    tol = res["to_tolerance"]
    assert (tol["n"], tol["k"], tol["tol"]) == (10_000, 5, 1e-2)
    assert set(tol["methods"]) == {"heap", "atk", "stk"}  # smoke mode leaves BubbleSort out
    assert all(m["all_converged"] for m in tol["methods"].values())
    assert set(row["seconds"]) == {"atk_heap", "atk_sort", "atk_topk", "stk_naive", "stk_fused", "mean"}


def test_heap_atk_is_the_average_of_the_k_largest():
    atk_heap = timing.atk_heap
    losses = torch.rand(1000, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    value = atk_heap(losses, None, 7)
    assert value.item() == pytest.approx(sum(sorted(losses.tolist())[-7:]) / 7, rel=1e-6)
    value.backward()
    assert sorted(losses.grad.tolist())[-7:] == [pytest.approx(1 / 7)] * 7 and losses.grad.sum().item() == pytest.approx(1)


def test_results_page_has_every_table_and_figure(run):
    out, docs, page = run
    text = page.read_text()
    for header in ("Figure 3", "Figure 4", "Tables 3 and 4", "Table 6", "Table 1", "Departures from the paper", "Run times", "Protocol"):
        assert header in text
    for d in CLASSIFICATION + REGRESSION + ("appendicitis", "abalone", "cpusmall"):
        assert d in text
    mean, std = TABLE3_LOGISTIC["phoneme"]["stk"]
    assert f"{mean:.2f} ± {std:.2f}" in text  # the paper's numbers sit beside ours
    assert re.search(r"\| german\s+\| 1000 x 24\s+\| 1000 x 20", text)  # Table 9 is the paper's
    assert "does not state" not in text
    for name in ("synthetic_2d", "imbalance_sweep", "binary_classification", "regression", "timing"):
        assert f"img/{name}.png" in text
        assert (docs / "img" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_tables_resume_from_finished_cells(run, capsys):
    out, _, _ = run
    cells = sorted((out / "cells").rglob("*.json"))
    before = {p: os.stat(p).st_mtime_ns for p in cells}
    summary = binary_classification.main(
        ["--mode", "smoke", "--out", str(out), "--datasets", "wisconsin", "--losses", "hinge"])
    assert {p: os.stat(p).st_mtime_ns for p in cells} == before  # nothing retrained
    previous = {(r["dataset"], r["loss"], r["method"]): r["mean"] for r in _json(out, "binary_classification")["rows"]}
    assert all(previous[(r["dataset"], r["loss"], r["method"])] == r["mean"] for r in summary["rows"])


def test_worker_processes_write_the_same_cells(run, tmp_path):
    out, _, _ = run
    binary_classification.main(["--mode", "smoke", "--out", str(tmp_path), "--datasets", "wisconsin", "australian",
                                "--losses", "hinge", "--workers", "2"])
    cells = sorted((tmp_path / "cells" / "smoke-seed0").glob("*.json"))
    assert len(cells) == 2 * len(METHODS)
    for path in cells:  # the sequential run of the fixture trained the same cells
        assert json.loads(path.read_text())["grid"] == json.loads((out / "cells" / "smoke-seed0" / path.name).read_text())["grid"]


def test_make_results_passes_workers_to_the_tables_only(run, monkeypatch, tmp_path):
    out, docs = tmp_path / "results", tmp_path / "docs"  # copies: the other tests read the fixture's files
    shutil.copytree(run[0], out, ignore=shutil.ignore_patterns("cells"))
    seen = {}
    monkeypatch.setattr(make_results, "example_main", lambda name: lambda argv: seen.setdefault(name, argv))
    make_results.main(["--mode", "smoke", "--out", str(out), "--docs", str(docs), "--full-logistic", "none",
                       "--gaussian-full", "none", "--workers", "3"])
    assert set(seen) == set(make_results.EXAMPLES)
    for name, argv in seen.items():
        assert (argv[-2:] == ["--workers", "3"]) == (name in ("binary_classification", "regression")), (name, argv)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ratios"):
        imbalance_sweep.main(["--mode", "smoke", "--out", str(tmp_path), "--ratios", "1.5"])
    with pytest.raises(SystemExit):  # argparse refuses an unknown dataset and names it
        binary_classification.main(["--mode", "smoke", "--out", str(tmp_path), "--datasets", "iris"])
    with pytest.raises(ValueError, match="workers=0"):
        binary_classification.main(["--mode", "smoke", "--out", str(tmp_path), "--workers", "0"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out"):
        regression.main(["--mode", "smoke", "--out", str(tmp_path / "file")])


def test_results_page_describes_the_machine_the_run_recorded(run):
    out, _, page = run
    machine = _json(out, "machine")
    assert machine["cpu_count"] == os.cpu_count() and machine["nice"] == os.nice(0)
    text = page.read_text()
    assert f"examples' runs on {os.cpu_count()} CPU cores, see" in text
    assert f"On {os.cpu_count()} CPU cores" in text and f"load average of {machine['load_average_1min']:.1f}" in text
    assert "2-core" not in text  # nothing about the machine is written into the template


def test_full_logistic_section_summarises_whole_repeats_only(run, tmp_path):
    # A partial full-mode grid: repeat 0 of wisconsin's logistic cells, one aggregate missing.
    out, _, _ = run
    full = tmp_path / "cells" / "full-seed0"
    full.mkdir(parents=True)
    for m in METHODS[:-1]:
        name = f"wisconsin__logistic__{m}__0.json"
        (full / name).write_text((out / "cells" / "smoke-seed0" / name).read_text())
    assert make_results.full_logistic_summary(tmp_path, seed=0) is None  # no repeat has every aggregate
    m = METHODS[-1]
    name = f"wisconsin__logistic__{m}__0.json"
    (full / name).write_text((out / "cells" / "smoke-seed0" / name).read_text())
    summary = make_results.full_logistic_summary(tmp_path, seed=0)
    assert (summary["cells_done"], summary["cells_total"]) == (len(METHODS), len(CLASSIFICATION) * len(METHODS) * 50)
    # The same cells summarised as smoke mode's one repeat (another test rewrites the smoke table's JSON).
    smoke = summarize(out / "cells" / "smoke-seed0", ["wisconsin"], ["logistic"], METHODS, 1)["rows"]
    smoke = {r["method"]: r for r in smoke}
    rows = {r["method"]: r for r in summary["rows"] if r["dataset"] == "wisconsin"}
    assert {m: r["mean"] for m, r in rows.items()} == {m: r["mean"] for m, r in smoke.items()}
    assert summary["selected_capped"] == sum(r["selected_hit_epoch_cap"] for r in rows.values())
    # The one repeat's cells were trained by this code, on this host: the page says so from the cells.
    code = describe_code()
    name = f"package source `{code['source_sha256']}`"
    if code["commit"]:
        name += f" (commit `{code['commit'][:10]}`{', with local changes' if code['modified'] else ''})"
    assert summary["provenance"]["code"] == [{"value": name, "repeats": "0", "count": 1}]
    assert summary["provenance"]["cpu_capability"] == [{"value": torch.backends.cpu.get_cpu_capability(),
                                                        "repeats": "0", "count": 1}]
