"""Per-example losses of a real score f against a target y, elementwise on any shape.

Classification (y in {-1, +1}): logistic, hinge. Regression (y real, e.g. in [0, 1]): square,
absolute. These are the individual losses of the paper's tabular experiments.
"""

from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F


def logistic_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(-y f)), as softplus for stability."""
    return F.softplus(-y * f)


def hinge_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[1 - y f]_+."""
    return F.relu(1 - y * f)


def square_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (f - y) ** 2


def absolute_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (f - y).abs()


POINTWISE_LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "logistic": logistic_loss,
    "hinge": hinge_loss,
    "square": square_loss,
    "absolute": absolute_loss,
}
