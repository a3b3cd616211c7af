"""Timing (STk paper, Table 1): the paper's measurement, and ours per pass.

    python examples/timing.py --out results                 # quick
    python examples/timing.py --mode full --out results     # the paper's 50 runs

1. As the paper measures it (stk_nmt/experiments/tolerance.py): seconds to the top-k sum of
   n = 10,000 standard-normal samples, k = 5, by BubbleSort, HeapSort (pure Python) and by iterating
   AT_k / ST_k on lambda until the error is below 1e-2; mean +- std over runs (full: 50 runs of each;
   quick: 10 runs, BubbleSort once; smoke: 1 run, no BubbleSort).
2. Per pass, the way the library is used in training: forward + backward at a fixed lambda for n = 1e4 ..
   1e6 (1e7 in full mode).

Runs the project benchmark benchmarks/bench_aggregates.py (forward + backward, interleaved rounds,
medians) with k = 5 as in the paper, adding one method: AT_k whose top-k indices come from Python's
heapq.nlargest (the paper's HeapSort row; the paper's BubbleSort row, 20 s at n = 1e4, is O(n^2)
and left out). Runs on one torch thread unless --threads says otherwise. Writes
<out>/timing.{json,csv,png}.
"""

import heapq
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stk_nmt.experiments.cli import DEFAULT_THREADS, base_parser, start  # noqa: E402
from stk_nmt.experiments.files import save_figure, write_csv, write_json  # noqa: E402
from stk_nmt.experiments import tolerance  # noqa: E402
from stk_nmt.experiments.paper import TABLE1, TABLE1_SECONDS  # noqa: E402

# Iterate-to-tolerance runs per mode: (runs, BubbleSort runs)
TOLERANCE_RUNS = {"full": (50, 50), "quick": (10, 1), "smoke": (1, 0)}
SIZES = {"full": [10_000, 100_000, 1_000_000, 10_000_000], "quick": [10_000, 100_000, 1_000_000],
         "smoke": [10_000]}
LABELS = {"atk_heap": "AT_k (heap)", "atk_sort": "AT_k (sort)", "atk_topk": "AT_k (selection, topk)",
          "stk_naive": "ST_k (autograd)", "stk_fused": "ST_k (fused)", "mean": "Average"}


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_aggregates", ROOT / "benchmarks" / "bench_aggregates.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def atk_heap(losses: torch.Tensor, lam: torch.Tensor, k: int) -> torch.Tensor:
    """AT_k with the top-k indices from a binary heap (heapq), then a differentiable gather."""
    values = losses.detach().tolist()
    top = heapq.nlargest(k, range(len(values)), key=values.__getitem__)
    return losses[torch.tensor(top)].mean()


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ns = [r["n"] for r in rows]
    for name, label in LABELS.items():
        ax.loglog(ns, [r["seconds"][name] for r in rows], marker="o", ms=3, label=label)
    ax.set_xlabel("n (losses)", fontsize=8)
    ax.set_ylabel("seconds, forward + backward (median)", fontsize=8)
    ax.set_title(f"k = {rows[0]['k']}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--k", type=int, default=5, help="k (default 5, the paper's setting)")
    parser.add_argument("--rounds", type=int, default=0, help="timing rounds (default: the benchmark's, by size)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; 0 = torch's default). One thread compares the "
                             "algorithms themselves and does not stall when other jobs share the cores")
    args = parser.parse_args(argv)
    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got k={args.k}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got threads={args.threads}")
    out = start(args, threads=args.threads or DEFAULT_THREADS)
    bench = load_benchmark()
    bench.METHODS["atk_heap"] = atk_heap  # one more method for the benchmark to time side by side
    load_before = os.getloadavg()[0]  # other jobs on the machine skew every timing: say so
    t0 = time.perf_counter()
    runs, bubble_runs = TOLERANCE_RUNS[args.mode]
    n_tol, k_tol = TABLE1["n"], TABLE1["k"]
    to_tol = tolerance.time_runs(n_tol, k_tol, runs, args.seed, methods=("heap", "atk", "stk"), tol=TABLE1["tol"])
    if bubble_runs:
        to_tol.update(tolerance.time_runs(n_tol, k_tol, bubble_runs, args.seed, methods=("bubble",)))
    for m, r in to_tol.items():
        print(f"to tolerance: {m:<7} {r['seconds_mean']:.4f} +- {r['seconds_std']:.4f} s over {r['runs']} runs"
              + (f", {r['iterations_mean']:.0f} iterations" if r["iterations_mean"] else ""))
    bench_argv = ["--sizes", *map(str, SIZES[args.mode]), "--k", str(args.k), "--no-memory",
                  "--seed", str(args.seed), "--methods", *LABELS]
    rounds = args.rounds or (5 if args.mode == "smoke" else 0)
    if rounds:
        bench_argv += ["--rounds", str(rounds)]
    rows = bench.main(bench_argv)["results"]
    table = [{"n": r["n"], "k": r["k"], "rounds": r["rounds"], "method": name, "label": LABELS[name],
              "seconds": sec, "x_stk_fused": sec / r["seconds"]["stk_fused"]}
             for r in rows for name, sec in r["seconds"].items()]
    result = {"mode": args.mode, "seed": args.seed, "k": args.k, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows, "paper_table1_seconds": TABLE1_SECONDS,
              "to_tolerance": {"n": n_tol, "k": k_tol, "tol": TABLE1["tol"], "lr": tolerance.LR,
                               "methods": to_tol},
              "elapsed_s": time.perf_counter() - t0,
              "load_average_1min": [load_before, os.getloadavg()[0]], "cpu_count": os.cpu_count()}
    write_json(out / "timing.json", result)
    write_csv(out / "timing.csv", table)
    plot(rows, out / "timing.png")
    return result


if __name__ == "__main__":
    main()
