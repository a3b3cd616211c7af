"""Balanced top-K hinge loss, forward + backward: stk_nmt.core vs pytopk 0.1.0, side by side.

    python benchmarks/bench_topk_hinge.py                      # the three issue shapes
    python benchmarks/bench_topk_hinge.py --shapes 256,1000,5,5 --repeats 9 --json out.json

Three implementations: pytopk, ours with noise_mode="dense" (which draws pytopk's noise
torch.randn(B, L, S) from the same seed, so the two losses are the same: printed as a check) and
ours with the default noise_mode="auto" (the lazy sampler where rows are spread enough, dense
elsewhere: the same law, other random numbers; printed as |z|, the difference from pytopk's loss
in units of its Monte-Carlo standard error, from the per-row losses). Per shape:
- time: one process alternates the two implementations call by call (forward + backward, median
  over --repeats), so a busy machine slows both alike and the ratio stays meaningful;
- peak memory: each implementation runs one forward + backward in a fresh subprocess; the extra
  memory is the peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs just
  before the call) minus the resident size after the inputs are allocated. It includes the (B, L)
  gradient both need. tracemalloc would miss torch's allocations, hence the OS counter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from _harness import peak_extra_bytes, run_json_worker
from stk_nmt.files import write_json

ISSUE_SHAPES = ["256,1000,5,5", "64,10000,5,5", "4096,10000,5,5"]
EPSILON = 1.0


def parse_shape(text: str):
    try:
        B, L, S, K = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--shapes entries must be B,L,S,K integers, got {text!r}") from None
    if min(B, L, S, K) < 1 or K >= L:
        raise ValueError(f"--shapes entry needs B, L, S, K >= 1 and K < L, got {text!r}")
    return B, L, S, K


IMPLEMENTATIONS = ("pytopk", "dense", "auto")


def build_loss(impl: str, K: int, S: int, reduction: str = "mean"):
    if impl == "pytopk":
        import pytopk

        return pytopk.BalNoisedTopK(k=K, epsilon=EPSILON, n_sample=S)
    from stk_nmt.core import BalancedTopKHinge

    return BalancedTopKHinge(K, EPSILON, S, noise_mode=impl, reduction=reduction)


def mean_difference_z(a: torch.Tensor, b: torch.Tensor) -> float:
    """|mean(a) - mean(b)| in units of its standard error, from two independent samples of per-row
    losses: about |N(0, 1)| when both have the same law."""
    a, b = a.double(), b.double()
    se = (a.var() / a.numel() + b.var() / b.numel()).sqrt().item()
    return abs(a.mean().item() - b.mean().item()) / max(se, 1e-12)


def law_check(B, L, S, K, seed) -> float:
    """|z| of auto's mean loss against the dense one's, from other seeds: the same law, so |z| is
    mostly below 2 (the standard error from the per-row losses of both)."""
    scores, labels = make_inputs(B, L, seed)
    scores = scores.detach()
    per_row = {}
    for impl, noise_seed in (("dense", seed + 11), ("auto", seed + 12)):
        torch.manual_seed(noise_seed)
        per_row[impl] = build_loss(impl, K, S, reduction="none")(scores, labels)
    return mean_difference_z(per_row["auto"], per_row["dense"])


def make_inputs(B, L, seed):
    g = torch.Generator().manual_seed(seed)
    scores = (torch.randn(B, L, generator=g) * 2).requires_grad_(True)
    labels = torch.randint(0, L, (B,), generator=g)
    return scores, labels


def step(loss_fn, scores, labels, seed):
    scores.grad = None
    torch.manual_seed(seed)  # both implementations draw from torch's default generator
    loss = loss_fn(scores, labels)
    loss.backward()
    return float(loss.detach())


def memory_worker(impl: str, B: int, L: int, S: int, K: int, seed: int) -> dict:
    """One forward + backward in this (fresh) process; the peak RSS above the inputs, in MiB."""
    scores, labels = make_inputs(B, L, seed)
    loss_fn = build_loss(impl, K, S)
    extra, value = peak_extra_bytes(lambda: step(loss_fn, scores, labels, seed + 1))
    return {"peak_extra_mib": extra / 2**20, "loss": value}


def measure_memory(impl, B, L, S, K, seed) -> dict:
    return run_json_worker([__file__, "--memory-worker", impl, "--shapes", f"{B},{L},{S},{K}", "--seed", str(seed),
                            "--threads", str(torch.get_num_threads())])


def measure_time(B, L, S, K, seed, repeats) -> dict:
    """Median seconds per forward + backward, the two implementations alternating call by call."""
    scores, labels = make_inputs(B, L, seed)
    fns = {impl: build_loss(impl, K, S) for impl in IMPLEMENTATIONS}
    times = {impl: [] for impl in fns}
    losses = {impl: step(fn, scores, labels, seed + 1) for impl, fn in fns.items()}  # warm-up + check
    for _ in range(repeats):
        for impl, fn in fns.items():
            t0 = time.perf_counter()
            step(fn, scores, labels, seed + 1)
            times[impl].append(time.perf_counter() - t0)
    return {impl: {"median_s": statistics.median(ts), "loss": losses[impl]} for impl, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=ISSUE_SHAPES, help="B,L,S,K entries (default: the issue's three)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation (median reported)")
    parser.add_argument("--big-repeats", type=int, default=2, help="timed calls when B*L*S > 1e8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here (atomically)")
    parser.add_argument("--memory-worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shapes = [parse_shape(s) for s in args.shapes]
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, *shapes[0], args.seed)))
        return
    if args.repeats < 1 or args.big_repeats < 1:
        raise ValueError(f"--repeats and --big-repeats must be >= 1, got {args.repeats}, {args.big_repeats}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seed {args.seed}, epsilon {EPSILON}; "
          "time = median forward+backward, mem = extra peak RSS (MiB)", flush=True)
    header = f"{'B':>5} {'L':>6} {'S':>3} {'K':>3} | {'pytopk ms':>10} {'dense ms':>9} {'x':>6} {'auto ms':>9} {'x':>6} | " \
             f"{'pytopk MiB':>10} {'dense MiB':>9} {'auto MiB':>9} | same loss (dense) | auto |z|"
    print(header)
    print("-" * len(header), flush=True)
    results = []
    for B, L, S, K in shapes:
        repeats = args.big_repeats if B * L * S > 1e8 else args.repeats
        timing = measure_time(B, L, S, K, args.seed, repeats)
        memory = {impl: measure_memory(impl, B, L, S, K, args.seed) for impl in IMPLEMENTATIONS}
        ref = timing["pytopk"]
        same = abs(ref["loss"] - timing["dense"]["loss"]) <= 1e-6 * max(1.0, abs(ref["loss"]))
        row = {"B": B, "L": L, "S": S, "K": K, "repeats": repeats, "same_loss_dense": same,
               "auto_law_z": law_check(B, L, S, K, args.seed)}
        for impl in IMPLEMENTATIONS:
            row[f"{impl}_s"] = timing[impl]["median_s"]
            row[f"{impl}_mib"] = memory[impl]["peak_extra_mib"]
            row[f"loss_{impl}"] = timing[impl]["loss"]
            row[f"speedup_{impl}"] = ref["median_s"] / timing[impl]["median_s"]
        results.append(row)
        print(f"{B:>5} {L:>6} {S:>3} {K:>3} | {1e3 * row['pytopk_s']:>10.1f} {1e3 * row['dense_s']:>9.1f} "
              f"{row['speedup_dense']:>5.1f}x {1e3 * row['auto_s']:>9.1f} {row['speedup_auto']:>5.1f}x | "
              f"{row['pytopk_mib']:>10.0f} {row['dense_mib']:>9.0f} {row['auto_mib']:>9.0f} | "
              f"{'yes' if same else 'NO':>17} | {row['auto_law_z']:.2f}", flush=True)
        if args.json:
            write_json(args.json, {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": results})


if __name__ == "__main__":
    main()
