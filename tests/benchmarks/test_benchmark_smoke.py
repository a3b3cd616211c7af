"""The core benchmark runs end to end on tiny sizes and reports every method (no timing asserted)."""

import bench_aggregates  # benchmarks/ is on pytest's pythonpath (pyproject.toml)


def test_benchmark_reports_every_method(capsys):
    out = bench_aggregates.main(["--sizes", "1000", "--k", "5", "--rounds", "2", "--no-memory"])
    (row,) = out["results"]
    assert (row["n"], row["k"]) == (1000, 5)
    assert set(row["seconds"]) == set(bench_aggregates.METHODS)
    assert all(v > 0 for v in row["seconds"].values())
    printed = capsys.readouterr().out
    for name in bench_aggregates.METHODS:
        assert name in printed
    # the README's table row, computed from the same run's times
    t = row["seconds"]
    fused = f"{t['stk_fused'] / t['mean']:.2f}x" if t["stk_fused"] / t["mean"] < 10 else f"{t['stk_fused'] / t['mean']:.0f}x"
    assert "| 1e3 " in printed and fused in printed.split("README table")[1]


def test_every_benchmarked_method_computes_the_right_value():
    losses, lam = bench_aggregates.make_inputs(200)
    top = sorted(losses.tolist(), reverse=True)[:20]
    expect = {"mean": losses.mean().item(), "atk_topk": sum(top) / 20, "atk_sort": sum(top) / 20}
    for name, value in expect.items():
        assert abs(bench_aggregates.METHODS[name](losses, lam, 20).item() - value) < 1e-5
    naive = bench_aggregates.METHODS["stk_naive"](losses, lam, 20).item()
    assert abs(bench_aggregates.METHODS["stk_fused"](losses, lam, 20).item() - naive) < 1e-5


# ---- the shared harness (benchmarks/_harness.py) -------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import _harness  # noqa: E402


def test_epoch_words_seconds_from_a_fairseq_log():
    # Two epoch summaries as fairseq's json log prints them (cumulative num_updates).
    epochs = [{"epoch": 1, "train_wpb": "500", "train_wps": "250", "train_num_updates": "4"},
              {"epoch": 2, "train_wpb": "400.0", "train_wps": "800", "train_num_updates": "10"}]
    log = "\n".join(["2026-01-01 | INFO | fairseq_cli.train | model transformer",
                     *(f"2026-01-01 | INFO | train | {json.dumps(e)}" for e in epochs), "done training"])
    summaries = _harness.epoch_summaries(log)
    assert [s["epoch"] for s in summaries] == [1, 2]
    # epoch 1: 4 updates x 500 words at 250 words/s; epoch 2: 6 updates x 400 words at 800 words/s
    assert _harness.epoch_words_seconds(summaries) == [(2000.0, 8.0), (2400.0, 3.0)]
    with pytest.raises(RuntimeError, match="no train_wps"):
        _harness.epoch_summaries("a log without summaries")


@pytest.mark.skipif(not _harness.can_reset_peak(), reason="needs a writable /proc/self/clear_refs (Linux)")
def test_peak_extra_bytes_sees_a_known_allocation():
    size = 64 * 2**20
    extra, value = _harness.peak_extra_bytes(lambda: int(np.ones(size, dtype=np.uint8).sum()))
    assert value == size
    assert 0.9 * size <= extra <= 1.5 * size


def test_zipf_corpus_targets_are_mapped_reversed_sources(tmp_path):
    _harness.write_zipf_corpus(tmp_path, vocab=50, lines=30, seed=3, valid_lines=5)
    for split, n in (("train", 30), ("valid", 5)):
        src = (tmp_path / f"{split}.src").read_text().splitlines()
        tgt = (tmp_path / f"{split}.tgt").read_text().splitlines()
        assert len(src) == len(tgt) == n
        for s, t in zip(src, tgt):
            words = s.split()
            assert 8 <= len(words) <= 29
            assert t.split() == [w.replace("s", "t", 1) for w in reversed(words)]
    entries = [line.split() for line in (tmp_path / "dict.tgt.txt").read_text().splitlines()]
    assert [w for w, _ in entries] == [f"t{i}" for i in range(50)]
    counts = [int(c) for _, c in entries]
    assert counts == sorted(counts, reverse=True) and min(counts) >= 1


def test_topk_hinge_benchmark_runs_on_a_tiny_shape(tmp_path, capsys):
    pytest.importorskip("pytopk")
    import bench_topk_hinge

    out = tmp_path / "out.json"
    bench_topk_hinge.main(["--shapes", "8,50,3,2", "--repeats", "1", "--json", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["B"], row["L"], row["S"], row["K"]) == (8, 50, 3, 2)
    assert row["same_loss_dense"] and row["pytopk_s"] > 0 and row["dense_s"] > 0 and row["auto_s"] > 0
    assert row["auto_law_z"] >= 0
    if os.access("/proc/self/clear_refs", os.W_OK):
        assert row["pytopk_mib"] >= 0 and row["dense_mib"] >= 0 and row["auto_mib"] >= 0
    assert "yes" in capsys.readouterr().out


def test_device_check_runs_on_the_cpu(tmp_path):
    # The script a session lent a GPU runs; here its smoke form, so that it cannot rot unseen.
    import device_check

    out = device_check.main(["--device", "cpu", "--tokens", "64", "--vocab", "3000", "--repeats", "2",
                             "--json", str(tmp_path / "check.json")])
    assert out["sync"]["ok"] is None  # only checked on CUDA
    assert len(out["module_sync"]) == 2 * (5 + 6) and all(r["ok"] is None for r in out["module_sync"].values())
    assert set(out["law_z"]) == {"fp32", "bf16"} and all(0 <= z < 5 for z in out["law_z"].values())
    assert {"dense", "lazy", "pytopk"} <= set(out["time"])
    assert all(out["time"][m]["median_s"] > 0 for m in ("dense", "lazy", "pytopk"))
    assert json.loads((tmp_path / "check.json").read_text())["vocab"] == 3000
    with pytest.raises(ValueError, match="--tokens"):
        device_check.main(["--device", "cpu", "--tokens", "1"])


# ---- the grid step benchmark ------------------------------------------------------------------------

import bench_grid_step  # noqa: E402


def test_grid_step_benchmark_times_both_and_finds_them_identical(capsys):
    out = bench_grid_step.main(["--shapes", "12,3", "--repeats", "3"])
    (row,) = out["results"]
    assert (row["G"], row["d"]) == (12, 3) and row["identical"] is True
    assert set(row["ms_per_step"]) == {"autograd", "grid"} and all(v > 0 for v in row["ms_per_step"].values())
    assert "yes" in capsys.readouterr().out


def test_grid_step_benchmark_names_a_bad_shape():
    with pytest.raises(SystemExit):
        bench_grid_step.main(["--shapes", "12"])
