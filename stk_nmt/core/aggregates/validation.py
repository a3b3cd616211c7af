"""Argument checks shared by every aggregate: clear ValueErrors, never a silent clamp."""

from __future__ import annotations

import math
import numbers
from typing import Optional

import torch

from ..sync_policy import checks_values


def check_delta(delta) -> None:
    """delta: a finite number > 0, or a floating-point tensor of them (one delta per row)."""
    if isinstance(delta, torch.Tensor):
        if not delta.is_floating_point() or delta.numel() == 0 or not bool((torch.isfinite(delta) & (delta > 0)).all()):
            raise ValueError(f"delta must hold finite numbers > 0, got delta={delta.tolist()!r}")
        return
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a finite number > 0, got delta={delta!r}")


def check_k_args(k: Optional[int], k_ratio: Optional[float]) -> None:
    """Exactly one of k (a count >= 1) and k_ratio (in (0, 1]) must be given."""
    if (k is None) == (k_ratio is None):
        raise ValueError(f"pass exactly one of k (a count) or k_ratio (a fraction), got k={k!r}, k_ratio={k_ratio!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise ValueError(f"k must be an integer >= 1, got k={k!r}")
    if k_ratio is not None and not (isinstance(k_ratio, (int, float)) and 0 < k_ratio <= 1):
        raise ValueError(f"k_ratio must be in (0, 1], got k_ratio={k_ratio!r}")


def resolve_k(n: int, k: Optional[int] = None, k_ratio: Optional[float] = None) -> int:
    """The number of items to keep among n valid ones.

    k_ratio gives k = ceil(k_ratio * n) clipped to [1, n] (recomputed for every batch); the product is
    rounded to 9 decimals first so that 0.07 * 100 (7.000000000000001 in floating point) gives 7, not 8. A count k must satisfy k <= n.
    """
    check_k_args(k, k_ratio)
    if k is not None:
        if k > n:
            raise ValueError(f"k must be <= the number of valid items n={n}, got k={k}")
        return int(k)
    return min(max(math.ceil(round(k_ratio * n, 9)), 1), n)


def select_valid(losses: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The valid losses as a 1-D tensor (all elements, flattened, when mask is None).

    mask: a bool tensor of the same shape as losses, True for items that count (e.g. non-padding).
    """
    if not isinstance(losses, torch.Tensor):
        raise ValueError(f"losses must be a torch.Tensor, got {type(losses).__name__}")
    if not losses.is_floating_point():
        raise ValueError(f"losses must be a floating-point tensor, got dtype={losses.dtype}")
    if losses.numel() == 0:
        raise ValueError(f"losses is empty (shape {tuple(losses.shape)}): nothing to aggregate")
    if mask is None:
        return losses.reshape(-1)
    if mask.shape != losses.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match losses shape {tuple(losses.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got dtype={mask.dtype}")
    valid = losses[mask]
    if valid.numel() == 0:
        raise ValueError(f"mask selects no item out of {losses.numel()}: the batch is fully masked")
    return valid


def raise_if_nonfinite(valid: torch.Tensor, value: torch.Tensor) -> None:
    """Raise when the aggregate is not finite, saying how many losses are NaN/inf.

    Checks the scalar result rather than every loss, so the common case costs no extra pass. On the
    CPU only (sync_policy.py): off it the NaN/inf is returned, as torch's own losses do.
    """
    if not checks_values(value) or bool(torch.isfinite(value)):
        return
    bad = int((~torch.isfinite(valid.detach())).sum())
    if bad:
        raise ValueError(f"losses contain {bad} non-finite value(s) (NaN or inf) out of {valid.numel()}")
    raise ValueError(f"the aggregate is not finite although every loss is: got {float(value)}")
