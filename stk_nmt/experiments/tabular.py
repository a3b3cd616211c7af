"""The paper's tabular protocol (Tables 3, 4, 6): a validation grid of 2-layer MLPs trained at once.

2-layer MLP (10 hidden units, ReLU), L2 regulariser ||w||^2 / (2C), batch 16, AdaGrad, early
stopping on the validation metric; every configuration of the grid over k, C, lr and delta is a
model of one BatchedMLP, and the configuration with the best validation metric gives the test number.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Iterator, List, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from stk_nmt.core import AGGREGATE_LABELS, AGGREGATES, get_aggregate
from stk_nmt.core.losses import POINTWISE_LOSSES

from .batched import BatchedAdagrad, BatchedAggregate, BatchedMLP, Config
from .datasets import Split
from .paper import PAPER_METHODS
from .stopping import EarlyStopping

METHODS = PAPER_METHODS  # the aggregates of the paper's tables; grid() takes any registered one
METHOD_LABELS = AGGREGATE_LABELS

# Individual losses of a score f against a target y (+-1 for classification, [0, 1] for regression).
INDIVIDUAL_LOSSES = POINTWISE_LOSSES
CLASSIFICATION_LOSSES = ("logistic", "hinge")
REGRESSION_LOSSES = ("square", "absolute")

# The paper's validation grid, and smaller ones for the quick and smoke modes.
GRIDS = {
    "full": {"k": [1] + [round(0.1 * i, 1) for i in range(1, 11)], "C": [10.0**e for e in range(6)],
             "lr": [0.1, 0.05, 0.01, 0.005, 0.001], "delta": [0.1, 0.01, 0.001, 0.0001]},
    "quick": {"k": [1, 0.5, 0.9], "C": [1e2, 1e4], "lr": [0.1, 0.01], "delta": [0.01]},
    "smoke": {"k": [0.9], "C": [1e3], "lr": [0.1], "delta": [0.01]},
}


def grid(method: str, mode: str) -> List[Config]:
    """Every configuration a method (a registered aggregate) is selected over: k only for those that
    use k (AT_k/MAT_k/ST_k), delta only for those that use delta (ST_k)."""
    if method not in AGGREGATES:
        raise ValueError(f"method must be one of {tuple(AGGREGATES)}, got method={method!r}")
    kind = get_aggregate(method)
    if mode not in GRIDS:
        raise ValueError(f"mode must be one of {tuple(GRIDS)}, got mode={mode!r}")
    g = GRIDS[mode]
    ks = g["k"] if kind.uses_k else [None]
    deltas = g["delta"] if kind.uses_delta else [None]
    return [Config(k, C, lr, d) for k, C, lr, d in itertools.product(ks, g["C"], g["lr"], deltas)]


def _metric(scores: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per model: misclassification rate in % (classification) or RMSE (regression)."""
    if task == "classification":
        return 100.0 * ((scores > 0).to(y.dtype) * 2 - 1 != y).to(torch.float32).mean(1)
    return (scores - y).pow(2).mean(1).sqrt()


@contextlib.contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU inside the block, then restore torch's default (off).

    Models of the grid whose weights or gradients decay into the subnormal range (below 1.2e-38 in
    fp32) make every GEMM that touches them several times slower on x86: a spambase ST_k grid took
    15 s for 3 epochs, 6.7 s flushed, with the same results (tests/experiments/test_examples_batched.py
    checks that the results do not change). torch has no getter for the flag, hence "restore off".
    """
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def train_grid(
    split: Split,
    loss: str,
    method: str,
    configs: Sequence[Config],
    task: str,
    seed: int,
    max_epochs: int = 100,
    patience: int = 10,
    min_gain: float = 1e-6,
    batch_size: int = 16,
    hidden: int = 10,
    progress: bool = True,
    flush_denormal: bool = True,
    drop_stopped: bool = True,
) -> List[dict]:
    """Train one model per configuration; return, per configuration, the validation metric at the
    best epoch, the validation loss there (tie-breaker), the test metric there and that epoch.

    Early stopping is the paper's rule (stopping.EarlyStopping): a model stops once its validation
    metric, checked after every epoch, has gained less than min_gain for `patience` checks; the
    numbers reported are those of its best check (rollback). max_epochs caps models that never stop.
    flush_denormal: train with subnormals flushed to zero (flushed_denormals), for speed.
    drop_stopped: stop computing the models that have stopped (about half the model-epochs of a full
    grid); each model's numbers are the same either way (tested)."""
    if loss not in INDIVIDUAL_LOSSES:
        raise ValueError(f"loss must be one of {tuple(INDIVIDUAL_LOSSES)}, got loss={loss!r}")
    if max_epochs < 1 or patience < 1 or batch_size < 1:
        raise ValueError(f"max_epochs, patience, batch_size must be >= 1, got {max_epochs}, {patience}, {batch_size}")
    individual = INDIVIDUAL_LOSSES[loss]
    G = len(configs)
    gen = torch.Generator().manual_seed(seed)
    model = BatchedMLP(G, split.X_train.shape[1], hidden, generator=gen)
    kind = get_aggregate(method)
    aggregate = BatchedAggregate(
        method, G,
        k_specs=[c.k for c in configs] if kind.uses_k else None,
        deltas=[c.delta for c in configs] if kind.uses_delta else None,
    )
    params = list(model.parameters()) + list(aggregate.parameters())
    lrs = torch.tensor([c.lr for c in configs])
    optimizer = BatchedAdagrad(params, lrs)
    inv_2C = torch.tensor([1.0 / (2 * c.C) for c in configs])

    Xtr, ytr = torch.from_numpy(split.X_train), torch.from_numpy(split.y_train)
    Xva, yva = torch.from_numpy(split.X_val), torch.from_numpy(split.y_val)
    Xte, yte = torch.from_numpy(split.X_test), torch.from_numpy(split.y_test)
    stopping = EarlyStopping(G, patience=patience, min_gain=min_gain)
    best_loss = torch.full((G,), float("inf"))
    test_at_best = torch.full((G,), float("nan"))
    best_epoch = torch.zeros(G, dtype=torch.long)

    bar = tqdm(range(1, max_epochs + 1), desc=f"{method}/{loss} G={G}", leave=False, disable=not progress)
    # The models still training (indices into configs); each model's state lives in the modules at
    # its position in `active`, its results in the (G,) tensors above and these two.
    active = torch.arange(G)
    best_val = torch.full((G,), float("inf"), dtype=torch.float64)
    stopped = torch.zeros(G, dtype=torch.bool)
    with flushed_denormals(flush_denormal):
        epochs_run = 0
        for epoch in bar:
            epochs_run = epoch
            for idx in torch.randperm(len(ytr), generator=gen).split(batch_size):
                scores = model(Xtr[idx])
                values = aggregate(individual(scores, ytr[idx]))
                objective = (values + inv_2C * model.weight_sq_norm()).sum()  # models are independent
                optimizer.zero_grad()
                objective.backward()
                optimizer.step()
            with torch.no_grad():
                val_scores = model(Xva)
                val = _metric(val_scores, yva, task)
                val_loss = torch.nan_to_num(individual(val_scores, yva).mean(1), nan=float("inf"))
                better = stopping.update(val)
                if bool(better.any()):
                    # Rollback: what is reported is measured at each model's best check.
                    rows = active[better]
                    test_at_best[rows] = _metric(model(Xte), yte, task)[better]
                    best_loss[rows] = val_loss[better]
                    best_epoch[rows] = epoch
                best_val[active], stopped[active] = stopping.best, stopping.stopped
            bar.set_postfix(best_val=f"{float(best_val.min()):.3f}", stopped=int(stopped.sum()))
            if stopping.all_stopped:
                break
            if bool(stopping.stopped.any()):
                # A stopped model's best check is final: stop computing it. With drop_stopped=False it
                # is frozen instead (learning rate 0), which costs as much as training it.
                if drop_stopped:
                    keep = (~stopping.stopped).nonzero().squeeze(1)
                    active, inv_2C, lrs = active[keep], inv_2C[keep], lrs[keep]
                    model.keep(keep)
                    aggregate.keep(keep)
                    stopping.keep(keep)
                    optimizer.keep(keep, list(model.parameters()) + list(aggregate.parameters()))
                else:
                    optimizer.lrs = torch.where(stopping.stopped, torch.zeros_like(lrs), lrs)
    bar.close()
    return [
        {**c.as_dict(), "val": float(best_val[g]), "val_loss": float(best_loss[g]),
         "test": float(test_at_best[g]), "best_epoch": int(best_epoch[g]),
         "stopped_early": bool(stopped[g]), "epochs": epochs_run}
        for g, c in enumerate(configs)
    ]


def select(results: Sequence[dict]) -> dict:
    """The configuration with the best validation metric (ties: lower validation loss, then grid order)."""
    finite = [r for r in results if np.isfinite(r["val"]) and np.isfinite(r["test"])]
    if not finite:
        raise ValueError("every configuration diverged (non-finite validation metric)")
    return min(finite, key=lambda r: (r["val"], r["val_loss"]))
