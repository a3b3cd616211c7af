"""Forward+backward time and peak extra memory of the aggregates, measured side by side.

    python benchmarks/bench_aggregates.py                    # n in 1e4..1e7, k = ceil(0.9 n)
    python benchmarks/bench_aggregates.py --sizes 10000 --k 5  # the paper's Table 1 setting

Methods: mean, AT_k via torch.topk, AT_k via torch.sort, ST_k through plain autograd ("naive") and
the fused one-pass ST_k. Timings are interleaved (one call of each method per round, rounds repeated)
and reported as medians, so machine noise hits every method alike; ratios are to the mean.
Peak extra memory (n >= 1e6) is the growth of the peak resident set (VmHWM, reset through
/proc/self/clear_refs) while a fresh process runs the method once, in units of one fp32 copy of the
losses; it includes the gradient w.r.t. the losses itself (one copy for every method).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Callable, Dict

import torch

from tabulate import tabulate

from stk_nmt.core import st_k
from stk_nmt.files import write_json

from _harness import can_reset_peak, peak_extra_bytes as peak_extra_of, run_json_worker  # noqa: E402

Method = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]

METHODS: Dict[str, Method] = {
    "mean": lambda x, lam, k: x.mean(),
    "atk_topk": lambda x, lam, k: torch.topk(x, k, sorted=False).values.mean(),
    "atk_sort": lambda x, lam, k: torch.sort(x, descending=True).values[:k].mean(),
    "stk_naive": lambda x, lam, k: st_k(x, lam, k, fused=False),
    "stk_fused": lambda x, lam, k: st_k(x, lam, k),
}


def make_inputs(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    losses = (torch.rand(n, generator=g) * 5).requires_grad_(True)
    lam = torch.tensor(2.5, requires_grad=True)
    return losses, lam


def run_once(method: Method, losses: torch.Tensor, lam: torch.Tensor, k: int) -> float:
    losses.grad = None
    lam.grad = None
    start = time.perf_counter()
    method(losses, lam, k).backward()
    return time.perf_counter() - start


def time_methods(n: int, k: int, names, rounds: int, warmup: int = 2, seed: int = 0) -> Dict[str, float]:
    """Median forward+backward seconds per method, interleaved round by round."""
    losses, lam = make_inputs(n, seed)
    for _ in range(warmup):
        for name in names:
            run_once(METHODS[name], losses, lam, k)
    samples = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            samples[name].append(run_once(METHODS[name], losses, lam, k))
    return {name: statistics.median(values) for name, values in samples.items()}


def _measure_peak_in_this_process(name: str, n: int, k: int) -> int:
    METHODS[name](*make_inputs(1000), 10).backward()  # load kernels before measuring
    losses, lam = make_inputs(n)
    return peak_extra_of(lambda: METHODS[name](losses, lam, k).backward())[0]


def peak_extra_bytes(name: str, n: int, k: int):
    """Peak resident-set growth of one forward+backward of `name` in a fresh process (None if the
    kernel does not let us reset the peak). The gradient w.r.t. the losses (one copy) is included."""
    if not can_reset_peak():
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys, json; sys.path.insert(0, {here!r}); from bench_aggregates import _measure_peak_in_this_process as m;"
            f"print(json.dumps({{'bytes': m({name!r}, {n}, {k})}}))")
    return run_json_worker(["-c", code])["bytes"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--k", type=int, help="a fixed k for every size")
    group.add_argument("--k-ratio", type=float, default=0.9, help="k = ceil(ratio * n) (default 0.9)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--rounds", type=int, default=0, help="timing rounds (default: by size)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-process memory measurement")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default 0: torch's default); 1 is steadier on a busy machine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    if args.k is not None and args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if not 0 < args.k_ratio <= 1:
        parser.error(f"--k-ratio must be in (0, 1], got {args.k_ratio}")
    if any(n < 1 for n in args.sizes):
        parser.error(f"--sizes must be >= 1, got {args.sizes}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seed {args.seed}; "
          f"forward+backward, median of interleaved rounds")
    results = []
    for n in args.sizes:
        k = args.k if args.k is not None else max(1, math.ceil(args.k_ratio * n))
        if k > n:
            raise SystemExit(f"--k {k} exceeds n={n}")
        rounds = args.rounds or max(5, min(200, int(2e7 // n)))
        times = time_methods(n, k, args.methods, rounds, seed=args.seed)
        row = {"n": n, "k": k, "rounds": rounds, "seconds": times}
        if not args.no_memory and n >= 1_000_000:
            peaks = {name: peak_extra_bytes(name, n, k) for name in args.methods}
            if all(v is not None for v in peaks.values()):
                row["peak_extra_copies"] = {name: v / (4 * n) for name, v in peaks.items()}
        results.append(row)
        base = times.get("mean")
        print(f"\nn = {n:,}  k = {k:,}  ({rounds} rounds)")
        print(f"  {'method':<10} {'ms':>10} {'x mean':>8}" + ("  peak extra (fp32 copies of losses)" if "peak_extra_copies" in row else ""))
        for name, seconds in times.items():
            ratio = f"{seconds / base:8.2f}" if base else "       -"
            mem = f"  {row['peak_extra_copies'][name]:6.2f}" if "peak_extra_copies" in row else ""
            print(f"  {name:<10} {seconds * 1e3:10.3f} {ratio}{mem}")
        if "stk_fused" in times:
            speedups = [f"{times[other] / times['stk_fused']:.1f}x vs {other}"
                        for other in ("atk_topk", "atk_sort", "stk_naive") if other in times]
            print("  fused ST_k speed-up: " + ", ".join(speedups))
    if set(ALL_FIVE) <= set(args.methods):
        print("\nREADME table (markdown):\n" + markdown_table(results))
    if args.json:
        write_json(args.json, results)
    return {"results": results}


ALL_FIVE = ("mean", "atk_topk", "atk_sort", "stk_naive", "stk_fused")


def markdown_table(results: list) -> str:
    """The README's table of one run: the mean's time, every method as a multiple of it, the fused
    ST_k against topk AT_k, and peak extra memory where it was measured."""
    def fmt(x: float) -> str:
        return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"

    rows = []
    for row in results:
        t = row["seconds"]
        mem = row.get("peak_extra_copies")
        vs_topk = t["atk_topk"] / t["stk_fused"]
        rows.append([f"{row['n']:.0e}".replace("e+0", "e"), f"{t['mean'] * 1e3:.3g} ms",
                     *(fmt(t[name] / t["mean"]) for name in ALL_FIVE[1:]),
                     f"{vs_topk:.1f}x faster" if vs_topk >= 1 else f"{vs_topk:.2f}x",
                     f"{mem['stk_fused']:.2f} / {mem['atk_topk']:.2f} copies" if mem else "-"])
    return tabulate(rows, headers=["n", "mean", "AT_k topk", "AT_k sort", "ST_k naive", "ST_k fused",
                                   "fused vs topk", "peak extra, fused / topk"], tablefmt="github",
                    disable_numparse=True)


if __name__ == "__main__":
    main()
