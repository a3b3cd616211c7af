"""The paper's synthetic 2-D data (Figures 3 and 4) and linear logistic regression with any aggregate.

Two Gaussians with covariance 0.8^|j-k| (unit variances, correlation 0.8). The class centred at
[2, 2] is labelled +1 and the class centred at [0, 0] is labelled -1. With the paper's prior 8:2 for
the +1 class, the Bayes rule is the linear boundary w* . x + b* = 0 with w* = [1.111, 1.111] and
b* = -0.836, the numbers the paper prints (with the 8 on the [0, 0] class b* would be -3.609).
The two classes share their covariance, so P(y = +1 | x) = sigmoid(w* . x + b*) exactly: logistic
regression with the average loss recovers w*, b* themselves (scale included) as n grows.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from stk_nmt.core import build_aggregate, lam_param_groups

MEAN_POS = (2.0, 2.0)
MEAN_NEG = (0.0, 0.0)
PRIOR_POS = 0.8  # the paper's prior 8:2


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
    aggregate = build_aggregate(method, k_ratio=k_ratio if method in ("atk", "matk", "stk") else None, delta=delta)
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
