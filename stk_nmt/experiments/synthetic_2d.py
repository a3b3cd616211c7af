"""Synthetic 2-D example (STk paper, Figure 3): logistic regression under each aggregate vs the Bayes rule.

    python examples/synthetic_2d.py --out results                 # quick: 2,000 points
    python examples/synthetic_2d.py --mode full --out results     # 10,000 points, more steps

Trains a linear model with the logistic loss aggregated by average, AT_k, MAT_k and ST_k (full
batch, Adam) and writes <out>/synthetic_2d.{json,csv,png}.

The data: two Gaussians with covariance 0.8^|j-k| (unit variances, correlation 0.8). The class centred at
[2, 2] is labelled +1 and the class centred at [0, 0] is labelled -1. With the paper's prior 8:2 for
the +1 class, the Bayes rule is the linear boundary w* . x + b* = 0 with w* = [1.111, 1.111] and
b* = -0.836, the numbers the paper prints (with the 8 on the [0, 0] class b* would be -3.609).
The two classes share their covariance, so P(y = +1 | x) = sigmoid(w* . x + b*) exactly: logistic
regression with the average loss recovers w*, b* themselves (scale included) as n grows.
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from tabulate import tabulate
from torch import nn
from tqdm.auto import tqdm

from stk_nmt.core import build_aggregate, get_aggregate, lam_param_groups

from .cli import base_parser, start, write_results
from .figures import png_figure
from .tabular import METHOD_LABELS

MEAN_POS = (2.0, 2.0)
MEAN_NEG = (0.0, 0.0)
PRIOR_POS = 0.8  # the paper's prior 8:2
METHODS = ("average", "atk", "matk", "stk")
SIZES = {"full": (10_000, 3000), "quick": (2000, 1000), "smoke": (300, 150)}  # (n_train, Adam steps)


def covariance(rho: float = 0.8, dim: int = 2) -> np.ndarray:
    """Sigma_jk = rho^|j - k|."""
    idx = np.arange(dim)
    return rho ** np.abs(idx[:, None] - idx[None, :])


def bayes_boundary(mean_pos: Sequence[float] = MEAN_POS, mean_neg: Sequence[float] = MEAN_NEG,
                   cov: Optional[np.ndarray] = None, prior_pos: float = PRIOR_POS) -> Tuple[np.ndarray, float]:
    """(w, b) of the Bayes rule for two Gaussians with a shared covariance (linear discriminant):
    w = Sigma^-1 (mu+ - mu-), b = -(mu+ Sigma^-1 mu+ - mu- Sigma^-1 mu-) / 2 + log(p+ / (1 - p+))."""
    if not 0 < prior_pos < 1:
        raise ValueError(f"prior_pos must be in (0, 1), got prior_pos={prior_pos}")
    mp, mn = np.asarray(mean_pos, float), np.asarray(mean_neg, float)
    cov = covariance(dim=len(mp)) if cov is None else np.asarray(cov, float)
    inv = np.linalg.inv(cov)
    w = inv @ (mp - mn)
    b = -0.5 * (mp @ inv @ mp - mn @ inv @ mn) + math.log(prior_pos / (1 - prior_pos))
    return w, float(b)


def sample(n: int, prior_pos: float, rng: np.random.Generator, rho: float = 0.8) -> Tuple[np.ndarray, np.ndarray]:
    """n points: round(prior_pos * n) from the +1 class, the rest from the -1 class, shuffled."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got n={n}")
    if not 0 < prior_pos < 1:
        raise ValueError(f"prior_pos must be in (0, 1), got prior_pos={prior_pos}")
    n_pos = int(round(prior_pos * n))
    cov = covariance(rho)
    X = np.concatenate([rng.multivariate_normal(MEAN_POS, cov, n_pos),
                        rng.multivariate_normal(MEAN_NEG, cov, n - n_pos)])
    y = np.concatenate([np.ones(n_pos), -np.ones(n - n_pos)])
    order = rng.permutation(n)
    return X[order].astype(np.float32), y[order].astype(np.float32)


def train_linear(X: np.ndarray, y: np.ndarray, method: str, k_ratio: Optional[float] = None,
                 delta: float = 0.01, steps: int = 2000, lr: float = 0.05, seed: int = 0) -> Tuple[np.ndarray, float]:
    """Logistic regression f(x) = w . x + b trained full batch with Adam on aggregate(log(1 + e^{-y f})).

    lam of MAT_k / ST_k is trained by the same optimizer (its own parameter group, no weight decay).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got steps={steps}")
    torch.manual_seed(seed)
    model = nn.Linear(X.shape[1], 1)
    aggregate = build_aggregate(method, k_ratio=k_ratio if get_aggregate(method).uses_k else None, delta=delta)
    optimizer = torch.optim.Adam(lam_param_groups([model, aggregate]), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(steps):
        losses = nn.functional.softplus(-yt * model(Xt).squeeze(1))
        optimizer.zero_grad()
        aggregate(losses).backward()
        optimizer.step()
    return model.weight.detach().numpy()[0].astype(float), float(model.bias.detach())


def predict(X: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return np.where(X @ w + b > 0, 1.0, -1.0)


def angle_deg(w: np.ndarray, w_ref: np.ndarray) -> float:
    """Angle between two boundary normals, in degrees."""
    cos = float(w @ w_ref / (np.linalg.norm(w) * np.linalg.norm(w_ref)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def plot(X, y, bayes, fits, path):
    with png_figure(path, figsize=(5, 4.2)) as (fig, ax):
        ax.scatter(*X[y > 0].T, s=3, c="tab:red", alpha=0.4, label="+1 (prior 0.8)")
        ax.scatter(*X[y < 0].T, s=3, c="tab:blue", alpha=0.4, label="-1 (prior 0.2)")
        xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 2)
        styles = ["--", "-.", ":", (0, (6, 2))]  # distinct dashes: the fitted lines often overlap
        lines = [("Bayes", *bayes, "k", "-")] + [(METHOD_LABELS[m], np.array(f["w"]), f["b"], None, styles[i % 4])
                                                 for i, (m, f) in enumerate(fits.items())]
        for label, w, b, color, style in lines:
            ax.plot(xs, -(w[0] * xs + b) / w[1], linestyle=style, color=color, lw=1.5, label=label)
        ax.set_ylim(X[:, 1].min(), X[:, 1].max())
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("Logistic regression: boundaries vs the Bayes rule", fontsize=9)


def main(argv=None) -> dict:
    parser = base_parser(__doc__)
    parser.add_argument("--k-ratio", type=float, default=0.8, help="k / n for AT_k, MAT_k, ST_k (default 0.8)")
    parser.add_argument("--delta", type=float, default=0.01, help="SReLU delta of ST_k (default 0.01)")
    args = parser.parse_args(argv)
    out = start(args)
    n, steps = SIZES[args.mode]
    rng = np.random.default_rng(args.seed)
    X, y = sample(n, PRIOR_POS, rng)
    X_test, y_test = sample(50_000, PRIOR_POS, rng)
    w_star, b_star = bayes_boundary()
    print(f"Bayes rule: w* = [{w_star[0]:.3f}, {w_star[1]:.3f}], b* = {b_star:.3f}")
    t0 = time.perf_counter()
    rows = [{"method": "bayes", "w1": w_star[0], "w2": w_star[1], "b": b_star, "angle_deg": 0.0,
             "test_accuracy": float((predict(X_test, w_star, b_star) == y_test).mean())}]
    fits = {}
    for m in tqdm(METHODS, desc="aggregates"):
        w, b = train_linear(X, y, m, k_ratio=args.k_ratio, delta=args.delta, steps=steps, seed=args.seed)
        fits[m] = {"w": w.tolist(), "b": b}
        rows.append({"method": m, "w1": w[0], "w2": w[1], "b": b, "angle_deg": angle_deg(w, w_star),
                     "test_accuracy": float((predict(X_test, w, b) == y_test).mean())})
    print(tabulate([[r["method"], f"[{r['w1']:.3f}, {r['w2']:.3f}]", r["b"], r["angle_deg"], r["test_accuracy"]]
                    for r in rows], headers=["method", "w", "b", "angle to w* (deg)", "test accuracy"],
                   floatfmt=(None, None, ".3f", ".2f", ".4f")))
    result = {"mode": args.mode, "seed": args.seed, "n_train": n, "steps": steps, "k_ratio": args.k_ratio,
              "delta": args.delta, "bayes": {"w": w_star.tolist(), "b": b_star}, "rows": rows,
              "elapsed_s": time.perf_counter() - t0}
    write_results(out, "synthetic_2d", result, rows)
    plot(X, y, (w_star, b_star), fits, out / "synthetic_2d.png")
    return result


if __name__ == "__main__":
    main()
