"""Timing (STk paper, Table 1): the paper's measurement, and ours per pass.

    python examples/timing.py --out results                 # quick
    python examples/timing.py --mode full --out results     # the paper's 50 runs

1. As the paper measures it (stk_nmt/experiments/tolerance.py): seconds to the top-k sum of
   n = 10,000 standard-normal samples, k = 5, by BubbleSort, HeapSort (pure Python) and by iterating
   AT_k / ST_k on lambda until the error is below 1e-2; mean +- std over runs (full: 50 runs of each;
   quick: 10 runs, BubbleSort once; smoke: 1 run, no BubbleSort).
2. Per pass, the way the library is used in training: forward + backward at a fixed lambda for n = 1e4 ..
   1e6 (1e7 in full mode).

Times the methods of benchmarks/bench_aggregates.py the same way (forward + backward, interleaved
rounds, medians; per_pass_seconds below) with k = 5 as in the paper, plus one method: AT_k whose
top-k indices come from Python's heapq.nlargest (the paper's HeapSort row; its BubbleSort row is
O(n^2) and left out of the per-pass table). Runs on one torch thread unless --threads says otherwise. Writes
<out>/timing.{json,csv,png}.
"""

import heapq
import os
import statistics
import time
from typing import Callable, Dict

import torch
from tabulate import tabulate

from stk_nmt.core import st_k

from . import tolerance
from .cli import DEFAULT_THREADS, base_parser, start, write_results
from .figures import png_figure
from .paper import TABLE1, TABLE1_SECONDS

# Iterate-to-tolerance runs per mode: (runs, BubbleSort runs)
TOLERANCE_RUNS = {"full": (50, 50), "quick": (10, 1), "smoke": (1, 0)}
SIZES = {"full": [10_000, 100_000, 1_000_000, 10_000_000], "quick": [10_000, 100_000, 1_000_000],
         "smoke": [10_000]}
LABELS = {"atk_heap": "AT_k (heap)", "atk_sort": "AT_k (sort)", "atk_topk": "AT_k (selection, topk)",
          "stk_naive": "ST_k (autograd)", "stk_fused": "ST_k (fused)", "mean": "Average"}

Method = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def atk_heap(losses: torch.Tensor, lam: torch.Tensor, k: int) -> torch.Tensor:
    """AT_k with the top-k indices from a binary heap (heapq), then a differentiable gather."""
    values = losses.detach().tolist()
    top = heapq.nlargest(k, range(len(values)), key=values.__getitem__)
    return losses[torch.tensor(top)].mean()


# The per-pass methods: benchmarks/bench_aggregates.py's five, and the heap AT_k.
METHODS: Dict[str, Method] = {
    "atk_heap": atk_heap,
    "atk_sort": lambda x, lam, k: torch.sort(x, descending=True).values[:k].mean(),
    "atk_topk": lambda x, lam, k: torch.topk(x, k, sorted=False).values.mean(),
    "stk_naive": lambda x, lam, k: st_k(x, lam, k, fused=False),
    "stk_fused": lambda x, lam, k: st_k(x, lam, k),
    "mean": lambda x, lam, k: x.mean(),
}


def default_rounds(n: int) -> int:
    """More rounds for small n, where one pass is short and noisy."""
    return max(5, min(200, int(2e7 // n)))


def per_pass_seconds(n: int, k: int, methods: Dict[str, Method], rounds: int, warmup: int = 2,
                     seed: int = 0) -> Dict[str, float]:
    """Median forward + backward seconds of each method on the same n losses and lam, interleaved
    round by round so that machine noise hits every method alike."""
    g = torch.Generator().manual_seed(seed)
    losses = (torch.rand(n, generator=g) * 5).requires_grad_(True)
    lam = torch.tensor(2.5, requires_grad=True)

    def once(method: Method) -> float:
        losses.grad = lam.grad = None
        t0 = time.perf_counter()
        method(losses, lam, k).backward()
        return time.perf_counter() - t0

    for _ in range(warmup):
        for method in methods.values():
            once(method)
    samples = {name: [] for name in methods}
    for _ in range(rounds):
        for name, method in methods.items():
            samples[name].append(once(method))
    return {name: statistics.median(values) for name, values in samples.items()}


def plot(rows, path):
    with png_figure(path, figsize=(5, 3.4)) as (fig, ax):
        ns = [r["n"] for r in rows]
        for name, label in LABELS.items():
            ax.loglog(ns, [r["seconds"][name] for r in rows], marker="o", ms=3, label=label)
        ax.set_xlabel("n (losses)", fontsize=8)
        ax.set_ylabel("seconds, forward + backward (median)", fontsize=8)
        ax.set_title(f"k = {rows[0]['k']}", fontsize=9)
        ax.legend(fontsize=7)


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--k", type=int, default=5, help="k (default 5, the paper's setting)")
    parser.add_argument("--rounds", type=int, default=0, help="timing rounds (default: by size)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; 0 = torch's default). One thread compares the "
                             "algorithms themselves and does not stall when other jobs share the cores")
    args = parser.parse_args(argv)
    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got k={args.k}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got threads={args.threads}")
    out = start(args, threads=args.threads or DEFAULT_THREADS)
    load_before = os.getloadavg()[0]  # other jobs on the machine skew every timing: say so
    t0 = time.perf_counter()
    runs, bubble_runs = TOLERANCE_RUNS[args.mode]
    n_tol, k_tol = TABLE1["n"], TABLE1["k"]
    to_tol = tolerance.time_runs(n_tol, k_tol, runs, args.seed, methods=("heap", "atk", "stk"), tol=TABLE1["tol"])
    if bubble_runs:
        to_tol.update(tolerance.time_runs(n_tol, k_tol, bubble_runs, args.seed, methods=("bubble",)))
    print(tabulate([[m, f"{r['seconds_mean']:.4f} +- {r['seconds_std']:.4f}", r["runs"],
                     f"{r['iterations_mean']:.0f}" if r["iterations_mean"] else "-"] for m, r in to_tol.items()],
                   headers=["to tolerance", "seconds", "runs", "iterations"], disable_numparse=True))
    rounds = args.rounds or (5 if args.mode == "smoke" else 0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seed {args.seed}; "
          f"forward+backward, median of interleaved rounds")
    rows = []
    for n in SIZES[args.mode]:
        if args.k > n:
            raise ValueError(f"--k must be <= n, got k={args.k} for n={n}")
        row = {"n": n, "k": args.k, "rounds": rounds or default_rounds(n)}
        row["seconds"] = per_pass_seconds(n, args.k, METHODS, row["rounds"], seed=args.seed)
        rows.append(row)
        print(f"\nn = {n:,}  k = {args.k:,}  ({row['rounds']} rounds)")
        print(tabulate([[name, seconds * 1e3, seconds / row["seconds"]["stk_fused"]]
                        for name, seconds in row["seconds"].items()],
                       headers=["method", "ms", "/ fused ST_k"], floatfmt=(None, ".3f", ".2f")))
    table = [{"n": r["n"], "k": r["k"], "rounds": r["rounds"], "method": name, "label": LABELS[name],
              "seconds": sec, "x_stk_fused": sec / r["seconds"]["stk_fused"]}
             for r in rows for name, sec in r["seconds"].items()]
    result = {"mode": args.mode, "seed": args.seed, "k": args.k, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows, "paper_table1_seconds": TABLE1_SECONDS,
              "to_tolerance": {"n": n_tol, "k": k_tol, "tol": TABLE1["tol"], "lr": tolerance.LR,
                               "methods": to_tol},
              "elapsed_s": time.perf_counter() - t0,
              "load_average_1min": [load_before, os.getloadavg()[0]], "cpu_count": os.cpu_count()}
    write_results(out, "timing", result, table)
    plot(rows, out / "timing.png")
    return result


if __name__ == "__main__":
    main()
