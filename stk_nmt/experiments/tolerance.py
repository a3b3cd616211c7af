"""The paper's Table 1 as measured there: time to obtain the top-k sum of n standard-normal samples,
by sorting (BubbleSort, HeapSort) or by iterating AT_k / ST_k until the error is below a tolerance.

Paper (Section 4.1): k = 5, n = 10,000, AT_k and ST_k iterate until the error is below 1e-2, 50 runs.
How the paper iterates is not printed; here both minimise the lambda form over lambda alone,
    F_h(lam) = sum_i h(l_i - lam) + k lam,
by gradient descent lam <- lam - lr * F_h'(lam) from lam = 0, with h = ReLU for AT_k (a
subgradient: F_relu's minimum is the top-k sum) and h = SReLU_delta for ST_k (a smooth surrogate).
The error of an iterate is |F_relu(lam) - top-k sum|: the top-k sum that lam gives, for both methods
(F_srelu itself is biased by about n delta^2 / (4 |l - lam|), ~0.07 at n = 10^4, above the tolerance).
"""

from __future__ import annotations

import heapq
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

LR = 1e-3  # our step size (F' is a count, up to n)
MAX_ITERS = 100_000


def bubble_sort_topk_sum(values: List[float], k: int) -> float:
    """Pure-Python bubble sort (O(n^2)), as the paper's BubbleSort row, then the k largest summed."""
    a = list(values)
    n = len(a)
    for i in range(n):
        swapped = False
        for j in range(n - 1 - i):
            if a[j] > a[j + 1]:
                a[j], a[j + 1] = a[j + 1], a[j]
                swapped = True
        if not swapped:
            break
    return float(sum(a[n - k:]))


def heap_sort_topk_sum(values: List[float], k: int) -> float:
    """Pure-Python heapsort (heapify, then pop every item: O(n log n)), then the k largest summed."""
    heap = list(values)
    heapq.heapify(heap)
    ordered = [heapq.heappop(heap) for _ in range(len(heap))]
    return float(sum(ordered[len(ordered) - k:]))


def lambda_form_relu(losses: torch.Tensor, lam: torch.Tensor, k: int) -> torch.Tensor:
    return torch.relu(losses - lam).sum() + k * lam


def iterate_topk_sum(losses: torch.Tensor, k: int, method: str, tol: float = 1e-2, delta: float = 0.01,
                     lr: float = LR, max_iters: int = MAX_ITERS, exact: Optional[float] = None) -> Dict[str, float]:
    """Gradient descent on lam until |F_relu(lam) - top-k sum| < tol. Returns the value, error and
    iterations. exact: the top-k sum the error is measured against (time_runs computes it before
    starting the clock); computed here when None."""
    if method not in ("atk", "stk"):
        raise ValueError(f"method must be 'atk' or 'stk', got method={method!r}")
    if tol <= 0 or lr <= 0 or max_iters < 1:
        raise ValueError(f"need tol > 0, lr > 0, max_iters >= 1; got tol={tol}, lr={lr}, max_iters={max_iters}")
    if exact is None:
        exact = float(torch.topk(losses, k).values.sum())
    lam = torch.zeros((), dtype=losses.dtype)
    for it in range(1, max_iters + 1):
        x = losses - lam
        if method == "atk":  # subgradient of sum relu(x) + k lam
            grad = k - (x > 0).sum().to(losses.dtype)
        else:  # gradient of sum srelu(x) + k lam; srelu'(x) = (1 + x / hypot(x, delta)) / 2
            grad = k - (0.5 * (1 + x / torch.hypot(x, x.new_tensor(delta)))).sum()
        lam = lam - lr * grad
        value = float(lambda_form_relu(losses, lam, k))
        if abs(value - exact) < tol:
            return {"value": value, "error": abs(value - exact), "iterations": it, "converged": True}
    return {"value": value, "error": abs(value - exact), "iterations": max_iters, "converged": False}


def time_runs(n: int, k: int, runs: int, seed: int, methods=("bubble", "heap", "atk", "stk"),
              tol: float = 1e-2) -> Dict[str, dict]:
    """Seconds per run (fresh samples each run) of every method; mean and std over runs."""
    if n <= k or k < 1 or runs < 1:
        raise ValueError(f"need 1 <= k < n and runs >= 1, got n={n}, k={k}, runs={runs}")
    fns: Dict[str, Callable] = {
        "bubble": lambda v, t, e: bubble_sort_topk_sum(v, k), "heap": lambda v, t, e: heap_sort_topk_sum(v, k),
        "atk": lambda v, t, e: iterate_topk_sum(t, k, "atk", tol=tol, exact=e),
        "stk": lambda v, t, e: iterate_topk_sum(t, k, "stk", tol=tol, exact=e),
    }
    out: Dict[str, dict] = {}
    for m in methods:
        if m not in fns:
            raise ValueError(f"method must be one of {tuple(fns)}, got {m!r}")
        secs, iters, ok = [], [], True
        for r in range(runs):
            rng = np.random.default_rng([seed, r])
            t = torch.from_numpy(rng.standard_normal(n))
            values, exact = t.tolist(), float(torch.topk(t, k).values.sum())
            t0 = time.perf_counter()
            res = fns[m](values, t, exact)
            secs.append(time.perf_counter() - t0)
            if isinstance(res, dict):
                iters.append(res["iterations"])
                ok &= res["converged"]
        out[m] = {"seconds_mean": float(np.mean(secs)), "seconds_std": float(np.std(secs)), "runs": runs,
                  "iterations_mean": float(np.mean(iters)) if iters else None, "all_converged": ok}
    return out
