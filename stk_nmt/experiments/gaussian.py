"""The paper's d = 200 Gaussian experiment (Table 2, Figure 4): sparse logistic regression whose
support is compared with the true one (ParaF1).

Setup as the paper prints it (Section 4.2): Sigma_jk = 0.25^(0.5 + |j - k|), class means mu_1 = 0 and
mu_2 = (1 x 10, 0 x 190); sigmoid(w . x + b) trained on binary cross-entropy aggregated by each
method, plus an l1 term; 10,000 / 2,500 / 2,500 train / validation / test, train positives:negatives
8:2 (Figure 4 varies the negative ratio), validation and test 1:1; Adam at its defaults, batch 512;
early stop when validation accuracy gains less than 1e-4 within 200 steps; SReLU delta = 0.01.

Choices the paper leaves open, made here: the mu_2 class is +1; the l1 weight (L1_WEIGHT), k/n
(K_RATIO) and the support threshold (SUPPORT_TOL: |w_j| > tol counts as selected) are ours;
validation is checked every eval_every Adam steps (every step in full mode) and the 200-step window is
counted in optimizer steps (StepStopping); the test numbers are those of the best check.
"""

from __future__ import annotations

import time
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from stk_nmt.core import build_aggregate, get_aggregate, lam_param_groups

DIM, N_SIGNAL, RHO = 200, 10, 0.25
L1_WEIGHT = 1e-3
K_RATIO = 0.5
SUPPORT_TOL = 1e-2
# Table 2's columns: (label, aggregate, smoother)
TABLE2_METHODS: Dict[str, Tuple[str, str, str]] = {
    "average": ("Average", "average", "srelu"), "maximum": ("Maximum", "maximum", "srelu"),
    "atk": ("AT_k", "atk", "srelu"), "matk": ("MAT_k", "matk", "relu"),
    "stk_elu": ("ST_k-ELU", "stk", "elu"), "stk_softplus": ("ST_k-SoftPlus", "stk", "softplus"),
    "stk_leaky_relu": ("ST_k-Leaky-ReLU", "stk", "leaky_relu"), "stk_srelu": ("ST_k-SReLU", "stk", "srelu"),
}
FIGURE4_METHODS = ("stk_srelu", "atk", "average")
FIGURE4_RATIOS = (0.5, 0.1, 0.05, 0.01, 0.005, 0.001)


def covariance(dim: int = DIM, rho: float = RHO) -> np.ndarray:
    """Sigma_jk = rho^(0.5 + |j - k|), as printed (a variance of rho^0.5 = 0.5 for rho = 0.25)."""
    if dim < 1 or not 0 <= rho < 1:
        raise ValueError(f"need dim >= 1 and 0 <= rho < 1, got dim={dim}, rho={rho}")
    idx = np.arange(dim)
    return rho ** (0.5 + np.abs(idx[:, None] - idx[None, :]))


def mean_pos(dim: int = DIM, n_signal: int = N_SIGNAL) -> np.ndarray:
    if not 1 <= n_signal <= dim:
        raise ValueError(f"need 1 <= n_signal <= dim, got n_signal={n_signal}, dim={dim}")
    return np.r_[np.ones(n_signal), np.zeros(dim - n_signal)]


def true_support(dim: int = DIM, n_signal: int = N_SIGNAL) -> np.ndarray:
    """The paper's support(w*): the first n_signal coordinates."""
    return np.arange(dim) < n_signal


def sample(n: int, neg_ratio: float, rng: np.random.Generator, dim: int = DIM,
           n_signal: int = N_SIGNAL) -> Tuple[np.ndarray, np.ndarray]:
    """n points, round(neg_ratio * n) (at least 1) of class -1 ~ N(0, Sigma), the rest +1 ~ N(mu_2, Sigma)."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got n={n}")
    if not 0 < neg_ratio < 1:
        raise ValueError(f"neg_ratio must be in (0, 1), got neg_ratio={neg_ratio}")
    n_neg = min(n - 1, max(1, int(round(neg_ratio * n))))
    chol = np.linalg.cholesky(covariance(dim))
    Z = rng.standard_normal((n, dim)) @ chol.T
    y = np.r_[-np.ones(n_neg), np.ones(n - n_neg)]
    X = Z + (y > 0)[:, None] * mean_pos(dim, n_signal)[None, :]
    order = rng.permutation(n)
    return X[order].astype(np.float32), y[order].astype(np.float32)


def para_f1(w: np.ndarray, support: np.ndarray, tol: float = SUPPORT_TOL) -> float:
    """F1 of the estimated support {j : |w_j| > tol} against the true support (a boolean mask)."""
    w, support = np.asarray(w, float), np.asarray(support, bool)
    if w.shape != support.shape:
        raise ValueError(f"w and support must have the same shape, got {w.shape} and {support.shape}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got tol={tol}")
    est = np.abs(w) > tol
    tp = int((est & support).sum())
    denom = int(est.sum()) + int(support.sum())
    return 2.0 * tp / denom if denom else 1.0  # both empty: perfect agreement


class StepStopping:
    """The paper's Table 2 rule, counted in optimizer steps: stop once validation accuracy has not
    gained at least `min_gain` over its best for `patience` optimizer steps, and roll back to the best.

    Validation is checked every `eval_every` steps; a check at step s stops the run when
    s - best_step >= patience. Counting steps (not checks) keeps the rule's 200-step window whatever
    eval_every is, also when eval_every does not divide it."""

    def __init__(self, patience: int, min_gain: float, eval_every: int = 1):
        if eval_every < 1 or patience < eval_every:
            raise ValueError(f"need 1 <= eval_every <= patience, got eval_every={eval_every}, patience={patience}")
        if min_gain < 0:
            raise ValueError(f"min_gain must be >= 0, got min_gain={min_gain}")
        self.patience, self.min_gain, self.eval_every = patience, min_gain, eval_every
        self.best, self.best_step, self.stopped = -float("inf"), 0, False

    def update(self, step: int, accuracy: float) -> bool:
        """The check after optimizer step `step` (1-based): True when `accuracy` is a new best."""
        if self.stopped:
            raise RuntimeError("update() after the rule stopped the run")
        improved = accuracy - self.best >= self.min_gain
        if improved:
            self.best, self.best_step = accuracy, step
        self.stopped = step - self.best_step >= self.patience
        return improved


def fit_with_stopping(step_fn, validate, snapshot, patience: int, min_gain: float, max_steps: int,
                      eval_every: int = 1) -> dict:
    """Call step_fn() (one optimizer step) until StepStopping or max_steps ends the run; validate()
    (the validation accuracy) after every eval_every-th step and after the last; snapshot() at each
    new best (the rollback point). Returns steps run, best_step (optimizer steps), best accuracy and
    whether the rule (not the cap) stopped the run."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got max_steps={max_steps}")
    rule = StepStopping(patience, min_gain, eval_every)
    step = 0
    while step < max_steps and not rule.stopped:
        step_fn()
        step += 1
        if step % eval_every and step < max_steps:
            continue
        if rule.update(step, validate()):
            snapshot()
    return {"steps": step, "best_step": rule.best_step, "best_accuracy": rule.best, "stopped_early": rule.stopped}


def train(X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, method: str,
          k_ratio: float = K_RATIO, delta: float = 0.01, l1: float = L1_WEIGHT, batch_size: int = 512,
          patience: int = 200, min_gain: float = 1e-4, max_steps: int = 20_000, eval_every: int = 1,
          seed: int = 0) -> dict:
    """Adam on aggregate(BCE) + l1 ||w||_1 with the paper's early stopping and rollback.

    Validation accuracy is checked every `eval_every` Adam steps; training stops once it has gained
    less than min_gain within `patience` optimizer steps (StepStopping). Returns the best-check
    weights w, b, the number of steps run, the best step and the training seconds.
    """
    if eval_every < 1 or patience < eval_every:
        raise ValueError(f"need 1 <= eval_every <= patience, got eval_every={eval_every}, patience={patience}")
    if method not in TABLE2_METHODS:
        raise ValueError(f"method must be one of {tuple(TABLE2_METHODS)}, got method={method!r}")
    _, name, smoother = TABLE2_METHODS[method]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Linear(X.shape[1], 1)
    aggregate = build_aggregate(name, k_ratio=k_ratio if get_aggregate(name).uses_k else None,
                                delta=delta, smoother=smoother)
    optimizer = torch.optim.Adam(lam_param_groups([model, aggregate]))  # Adam defaults (lr 1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    Xv, yv = torch.from_numpy(X_val), torch.from_numpy(y_val)
    best = {"w": model.weight.detach().clone(), "b": model.bias.detach().clone()}
    batches = iter(())

    def step_fn() -> None:
        nonlocal batches
        idx = next(batches, None)
        if idx is None:  # a new epoch: a fresh permutation of the training set
            batches = iter(torch.randperm(len(yt), generator=gen).split(batch_size))
            idx = next(batches)
        losses = nn.functional.softplus(-yt[idx] * model(Xt[idx]).squeeze(1))  # BCE with +-1 labels
        objective = aggregate(losses) + l1 * model.weight.abs().sum()
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()

    def validate() -> float:
        with torch.no_grad():
            return float(((model(Xv).squeeze(1) > 0).float() * 2 - 1 == yv).double().mean())

    def snapshot() -> None:
        best["w"], best["b"] = model.weight.detach().clone(), model.bias.detach().clone()

    t0 = time.perf_counter()
    run = fit_with_stopping(step_fn, validate, snapshot, patience, min_gain, max_steps, eval_every)
    return {"w": best["w"].numpy()[0].astype(float), "b": float(best["b"][0]), "steps": run["steps"],
            "best_step": run["best_step"], "stopped_early": run["stopped_early"],
            "seconds": time.perf_counter() - t0}


def accuracy(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    return float((np.where(X @ w + b > 0, 1.0, -1.0) == y).mean())


def run_cell(method: str, neg_ratio: float, repeat: int, seed: int, sizes: Sequence[int] = (10_000, 2_500, 2_500),
             max_steps: int = 20_000, patience: int = 200, eval_every: int = 1, k_ratio: float = K_RATIO, l1: float = L1_WEIGHT,
             tol: float = SUPPORT_TOL) -> dict:
    """One (method, ratio, repeat): fresh data (the same for every method of a repeat and ratio)."""
    rng = np.random.default_rng([seed, repeat, int(round(neg_ratio * 100_000))])
    n_train, n_val, n_test = sizes
    X, y = sample(n_train, neg_ratio, rng)
    X_val, y_val = sample(n_val, 0.5, rng)
    X_test, y_test = sample(n_test, 0.5, rng)
    fit = train(X, y, X_val, y_val, method, k_ratio=k_ratio, l1=l1, max_steps=max_steps, patience=patience,
                eval_every=eval_every, seed=seed + repeat)
    return {"method": method, "neg_ratio": neg_ratio, "repeat": repeat,
            "accuracy": 100.0 * accuracy(X_test, y_test, fit["w"], fit["b"]),
            "para_f1": para_f1(fit["w"], true_support(), tol), "support_size": int((np.abs(fit["w"]) > tol).sum()),
            "val_accuracy": 100.0 * accuracy(X_val, y_val, fit["w"], fit["b"]),
            "steps": fit["steps"], "best_step": fit["best_step"], "stopped_early": fit["stopped_early"],
            "seconds": fit["seconds"]}


def bayes_direction(dim: int = DIM, n_signal: int = N_SIGNAL) -> np.ndarray:
    """Sigma^-1 (mu_2 - mu_1): the Bayes rule's normal. With this Sigma (an AR(1) covariance, whose
    inverse is tridiagonal) it has n_signal + 1 nonzero coordinates, not n_signal."""
    return np.linalg.solve(covariance(dim), mean_pos(dim, n_signal))


def bayes_accuracy(dim: int = DIM, n_signal: int = N_SIGNAL) -> float:
    """Accuracy of the Bayes rule on a balanced test set: Phi(Delta / 2), Delta the Mahalanobis
    distance between the class means (two Gaussians with one covariance: the Bayes rule is linear,
    so no model in Table 2 can score higher in expectation)."""
    from scipy.stats import norm

    mu = mean_pos(dim, n_signal)
    delta = float(np.sqrt(mu @ np.linalg.solve(covariance(dim), mu)))
    return float(norm.cdf(delta / 2))


def summarize(cells: Sequence[dict]) -> list:
    """Mean and std (ddof STD_DDOF, as the tables) per (method, neg_ratio) of accuracy, ParaF1, seconds,
    steps and best step; `by_repeat` keeps each repeat's [accuracy, ParaF1, steps] for paired comparisons."""
    from .table_runs import STD_DDOF

    groups: Dict[tuple, list] = {}
    for c in cells:
        groups.setdefault((c["method"], c["neg_ratio"]), []).append(c)
    rows = []
    for (m, r), cs in groups.items():
        row = {"method": m, "label": TABLE2_METHODS[m][0], "neg_ratio": r, "n_repeats": len(cs),
               "stopped_early": sum(bool(c["stopped_early"]) for c in cs),
               "by_repeat": {str(c["repeat"]): [c["accuracy"], c["para_f1"], c["steps"]] for c in cs}}
        for f in ("accuracy", "para_f1", "seconds", "steps", "best_step", "support_size"):
            v = np.array([c[f] for c in cs], float)
            row[f"{f}_mean"], row[f"{f}_std"] = float(v.mean()), float(v.std(ddof=STD_DDOF))
        rows.append(row)
    return rows
