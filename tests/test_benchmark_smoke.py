"""The core benchmark runs end to end on tiny sizes and reports every method (no timing asserted)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_aggregates  # noqa: E402


def test_benchmark_reports_every_method(capsys):
    out = bench_aggregates.main(["--sizes", "1000", "--k", "5", "--rounds", "2", "--no-memory"])
    (row,) = out["results"]
    assert (row["n"], row["k"]) == (1000, 5)
    assert set(row["seconds"]) == set(bench_aggregates.METHODS)
    assert all(v > 0 for v in row["seconds"].values())
    printed = capsys.readouterr().out
    for name in bench_aggregates.METHODS:
        assert name in printed


def test_every_benchmarked_method_computes_the_right_value():
    losses, lam = bench_aggregates.make_inputs(200)
    top = sorted(losses.tolist(), reverse=True)[:20]
    expect = {"mean": losses.mean().item(), "atk_topk": sum(top) / 20, "atk_sort": sum(top) / 20}
    for name, value in expect.items():
        assert abs(bench_aggregates.METHODS[name](losses, lam, 20).item() - value) < 1e-5
    naive = bench_aggregates.METHODS["stk_naive"](losses, lam, 20).item()
    assert abs(bench_aggregates.METHODS["stk_fused"](losses, lam, 20).item() - naive) < 1e-5
