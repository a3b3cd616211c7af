"""Smooth (and exact) replacements for the hinge [x]_+ inside the lambda-form aggregates.

SReLU_d(x) = 0.5 * (x + sqrt(x^2 + d^2) - d) is the smoother of ST_k. The paper's Table 2 also
swaps in ELU, Softplus and LeakyReLU (framework defaults); "relu" is the exact hinge, which turns
ST_k into MAT_k. Every smoother computes in at least fp32: half inputs are upcast, because the
paper's form of SReLU overflows in fp16 for |x| > ~2.5.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..precision import compute_dtype, upcast  # noqa: F401  (compute_dtype: for the old stk_nmt.core.smoothers path)
from .validation import check_delta

Smoother = Callable[[torch.Tensor], torch.Tensor]


def _delta_like(x: torch.Tensor, delta) -> torch.Tensor:
    """delta as a tensor of x's dtype and device: a number, or a tensor that broadcasts against x
    (one delta per row of a (G, B) matrix: shape (G, 1))."""
    check_delta(delta)
    if isinstance(delta, torch.Tensor):
        return delta.to(device=x.device, dtype=x.dtype)
    return x.new_tensor(delta)


def srelu(x: torch.Tensor, delta: float = 0.01) -> torch.Tensor:
    """SReLU_delta(x) = 0.5 * (x + sqrt(x^2 + delta^2) - delta), in at least fp32.

    hypot avoids the overflow of x^2 for large |x| (and of the paper's x^2/delta^2 form).
    delta: a number, or a tensor broadcastable to x (per-row deltas).
    """
    x = upcast(x)
    d = _delta_like(x, delta)
    return 0.5 * (x + torch.hypot(x, d) - d)


def srelu_grad(x: torch.Tensor, delta: float = 0.01) -> torch.Tensor:
    """d SReLU_delta / dx = 0.5 * (1 + x / sqrt(x^2 + delta^2)), in (0, 1)."""
    x = upcast(x)
    return 0.5 * (1.0 + x / torch.hypot(x, _delta_like(x, delta)))


def _elu(x: torch.Tensor) -> torch.Tensor:
    return F.elu(upcast(x))


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(upcast(x))


def _leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(upcast(x))


def _relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(upcast(x))


SMOOTHERS = ("srelu", "relu", "elu", "softplus", "leaky_relu")


def get_smoother(name: str, delta: float = 0.01) -> Smoother:
    """The smoother called `name` (see SMOOTHERS); `delta` is used by "srelu" only."""
    if name == "srelu":
        check_delta(delta)
        return lambda x: srelu(x, delta)
    table = {"relu": _relu, "elu": _elu, "softplus": _softplus, "leaky_relu": _leaky_relu}
    if name not in table:
        raise ValueError(f"smoother must be one of {SMOOTHERS}, got {name!r}")
    return table[name]


__all__ = ["srelu", "srelu_grad", "get_smoother", "SMOOTHERS", "upcast"]
