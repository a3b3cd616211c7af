"""The top-K hinge on an accelerator, in one short run (for a session that is lent a GPU).

    python benchmarks/device_check.py --json $OUT/device_check.json       # on the GPU machine (~1 min)
    python benchmarks/device_check.py --device cpu --tokens 64 --vocab 3000 --repeats 2   # smoke

At a fairseq-sized batch (--tokens x --vocab logits, S = 5, K = 5, eps = 1):
1. synchronisations (CUDA only): under torch.cuda.set_sync_debug_mode("error") the hinge's forward
   and backward with the default noise_mode ("auto", dense off the CPU) and the fused ST_k aggregate
   over the per-token losses must not synchronise with the host; nor must a training step (forward,
   backward, optimizer step) of each aggregate module once lam is set, with each classification loss
   of the core under ST_k (the vision adapter's criterion), in fp32 and bf16 logits;
2. law: the mean loss of "dense" against "lazy" (other random numbers, the same law), as |z| from
   the per-row losses, for fp32 and bf16 logits;
3. time: median forward + backward per implementation (dense, lazy, pytopk when it runs there),
   the device synchronised around each call, side by side in one run;
4. memory: peak allocated bytes above the inputs per implementation (CUDA only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import bench_topk_hinge
from stk_nmt.core import fused_st_k, noised_topk_hinge
from stk_nmt.files import write_json

K, S, EPSILON = 5, 5, 1.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_inputs(tokens: int, vocab: int, device: torch.device, dtype=torch.float32, seed: int = 0):
    """bench_topk_hinge's inputs (2 * randn logits, uniform labels) on `device`, in `dtype`."""
    scores, labels = bench_topk_hinge.make_inputs(tokens, vocab, seed)
    return scores.detach().to(device=device, dtype=dtype).requires_grad_(True), labels.to(device)


def hinge_step(mode: str, scores, labels):
    if mode == "pytopk":
        import pytopk

        return pytopk.BalNoisedTopK(k=K, epsilon=EPSILON, n_sample=S)(scores, labels)
    return noised_topk_hinge(scores, labels, K, EPSILON, S, noise_mode=mode)


def sync_check(scores, labels) -> dict:
    """The default hinge and the fused ST_k over its per-token losses, forward and backward, under
    CUDA's sync debug mode "error" ({"ok": bool, "error": ...}); elsewhere only run (ok None)."""
    def step():
        scores.grad = None
        losses = noised_topk_hinge(scores, labels, K, EPSILON, S, reduction="none")
        lam = losses.detach().mean().reshape(1)  # a device tensor: nothing read back
        fused_st_k(losses, lam, max(1, int(0.9 * losses.numel())), 0.01).backward()

    return under_sync_error(step, scores.device)


def under_sync_error(step, device: torch.device) -> dict:
    """Run `step` under CUDA's sync debug mode "error" ({"ok": bool, "error": ...}); elsewhere only run."""
    if device.type != "cuda":
        step()
        return {"ok": None, "error": "not a CUDA device"}
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        return {"ok": True, "error": None}
    except RuntimeError as error:  # the sync debug mode raises RuntimeError
        return {"ok": False, "error": str(error)[:300]}
    finally:
        torch.cuda.set_sync_debug_mode("default")


def module_sync_checks(device: torch.device, rows: int = 256, classes: int = 100) -> dict:
    """A training step of each aggregate module and of each classification loss under ST_k, after the
    first batch (which sets lam, one read-back per run), in fp32 and bf16 logits."""
    from stk_nmt.core import get_aggregate
    from stk_nmt.core.losses import LOSSES
    from stk_nmt.vision import LongTailCriterion

    counts = [max(1, 500 // (c + 1)) for c in range(classes)]
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        for name in ("average", "maximum", "atk", "matk", "stk"):
            module = get_aggregate(name).build(k_ratio=0.9).to(device).train()
            losses = torch.rand(rows, device=device, dtype=dtype, requires_grad=True)
            module(losses.detach())  # the first batch sets lam
            results[f"aggregate {name} {dtype}"] = under_sync_error(lambda: module(losses).backward(), device)
        for loss in LOSSES:
            criterion = LongTailCriterion(loss, aggregate="stk", k_ratio=0.9, class_counts=counts).to(device)
            logits = torch.randn(rows, classes, device=device, dtype=dtype, requires_grad=True)
            labels = torch.randint(0, classes, (rows,), device=device)
            optimizer = torch.optim.SGD([logits, *criterion.param_groups()[0]["params"]], lr=0.1)
            criterion(logits.detach(), labels)

            def step():
                optimizer.zero_grad()
                criterion(logits, labels).backward()
                optimizer.step()

            results[f"loss {loss} + stk {dtype}"] = under_sync_error(step, device)
    return results


def law_check(scores, labels) -> float:
    """|z| of lazy's mean loss against dense's (independent draws, the same law)."""
    with torch.no_grad():
        per_row = {mode: noised_topk_hinge(scores.detach(), labels, K, EPSILON, S, noise_mode=mode, reduction="none")
                   for mode in ("dense", "lazy")}
    return bench_topk_hinge.mean_difference_z(per_row["lazy"], per_row["dense"])


def timings(scores, labels, modes, repeats: int) -> dict:
    """Median seconds of forward + backward per mode, the modes alternating call by call; a mode that
    fails (pytopk out of memory, say) reports its error instead."""
    device = scores.device
    result, times = {}, {}
    for mode in modes:
        try:
            scores.grad = None
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            hinge_step(mode, scores, labels).backward()  # warm-up
            synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None
            times[mode], result[mode] = [], {"peak_extra_bytes": peak}
        except (RuntimeError, ImportError) as error:
            result[mode] = {"error": str(error)[:300]}
    for _ in range(repeats):
        for mode in times:
            scores.grad = None
            synchronize(device)
            t0 = time.perf_counter()
            hinge_step(mode, scores, labels).backward()
            synchronize(device)
            times[mode].append(time.perf_counter() - t0)
    for mode, ts in times.items():
        result[mode]["median_s"] = statistics.median(ts)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--tokens", type=int, default=4000, help="rows of logits (target tokens of a batch)")
    parser.add_argument("--vocab", type=int, default=32000, help="classes per row")
    parser.add_argument("--repeats", type=int, default=11, help="timed calls per implementation")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.vocab <= K + 1 or args.repeats < 1:
        raise ValueError(f"need --tokens >= 2, --vocab > {K + 1}, --repeats >= 1; got {args.tokens}, {args.vocab}, "
                         f"{args.repeats}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available here (use --device cpu for a smoke run)")
    out = {"torch": torch.__version__, "device": str(device), "tokens": args.tokens, "vocab": args.vocab,
           "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    scores, labels = make_inputs(args.tokens, args.vocab, device)
    out["sync"] = sync_check(scores, labels)
    out["module_sync"] = module_sync_checks(device)
    out["law_z"] = {"fp32": law_check(scores, labels)}
    bf16, _ = make_inputs(args.tokens, args.vocab, device, torch.bfloat16)
    out["law_z"]["bf16"] = law_check(bf16, labels)
    out["time"] = timings(scores, labels, ("dense", "lazy", "pytopk"), args.repeats)
    print(json.dumps(out, indent=1))
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
