"""G aggregates at once over the rows of a (G, B) loss matrix: (G, B) -> (G,) values.

Row g is aggregated as the functional form (functional.py) aggregates losses[g] alone, with its
own k[g], lam[g] and delta[g]: a grid of G small models (one per hyper-parameter configuration)
trains in one batched pass. k is a (G,) integer tensor (resolve_k_rows applies the core's k rule
to one count or ratio per row), lam a (G,) tensor, delta a number or a (G,) tensor.

Unlike the functional forms these take no mask and do not raise on a non-finite value: one
diverging row of a grid must not stop the others (its value is simply NaN/inf).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

from ..precision import upcast
from ..selection import select_kth_largest
from .smoothers import get_smoother
from .validation import resolve_k

KSpec = Union[int, float]  # an int is a count of items, a float a ratio of the row


def resolve_k_rows(n: int, k_specs: Sequence[KSpec]) -> torch.Tensor:
    """(G,) long tensor: each row's k for rows of n items, by resolve_k (int = count, float = ratio)."""
    return torch.tensor([resolve_k(n, k=s) if isinstance(s, int) else resolve_k(n, k_ratio=s) for s in k_specs])


def _check_rows(losses: torch.Tensor) -> None:
    if not isinstance(losses, torch.Tensor) or losses.dim() != 2 or not losses.is_floating_point():
        raise ValueError(f"losses must be a floating-point (G, B) tensor, got {getattr(losses, 'shape', type(losses))}")
    if losses.shape[0] == 0 or losses.shape[1] == 0:
        raise ValueError(f"losses must have G >= 1 rows of B >= 1 items, got shape {tuple(losses.shape)}")


def _check_row_tensor(name: str, value: torch.Tensor, G: int) -> None:
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != (G,):
        raise ValueError(f"{name} must be a tensor of shape (G,) = ({G},), got {getattr(value, 'shape', value)!r}")


def _check_k(k: torch.Tensor, losses: torch.Tensor) -> None:
    G, n = losses.shape
    _check_row_tensor("k", k, G)
    if k.is_floating_point() or k.dtype == torch.bool or not bool(((k >= 1) & (k <= n)).all()):
        raise ValueError(f"k must hold integers in [1, B={n}] (see resolve_k_rows), got k={k.tolist()!r}")


def batched_average(losses: torch.Tensor) -> torch.Tensor:
    _check_rows(losses)
    return upcast(losses).mean(1)


def batched_maximum(losses: torch.Tensor) -> torch.Tensor:
    _check_rows(losses)
    return upcast(losses).max(1).values


def batched_average_top_k(losses: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """AT_k per row: the mean of the k[g] largest losses of row g."""
    _check_rows(losses)
    _check_k(k, losses)
    # One sort handles a different k per row (for minibatch-sized rows as cheap as topk).
    top = upcast(losses).sort(1, descending=True).values
    keep = torch.arange(losses.shape[1], device=losses.device).unsqueeze(0) < k.unsqueeze(1)
    return (top * keep).sum(1) / k


def batched_kth_largest(losses: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The k[g]-th largest loss of each row (detached): where each row's lam sits at the optimum."""
    _check_rows(losses)
    _check_k(k, losses)
    return select_kth_largest(upcast(losses.detach()), k)


def batched_lambda_form(
    losses: torch.Tensor, lam: torch.Tensor, k: torch.Tensor, smoother: str = "srelu", delta=0.01
) -> torch.Tensor:
    """(1/n) sum_i smoother(l_gi - lam_g) + (k_g/n) lam_g per row; delta a number or one per row."""
    _check_rows(losses)
    _check_k(k, losses)
    _check_row_tensor("lam", lam, losses.shape[0])
    if isinstance(delta, torch.Tensor):
        _check_row_tensor("delta", delta, losses.shape[0])
        delta = delta.unsqueeze(1)
    x = upcast(losses) - lam.unsqueeze(1)
    return get_smoother(smoother, delta)(x).mean(1) + k.to(x.dtype) / losses.shape[1] * lam


def batched_st_k(losses: torch.Tensor, lam: torch.Tensor, k: torch.Tensor, delta=0.01) -> torch.Tensor:
    """ST_k per row: (1/n) sum SReLU_delta_g(l_gi - lam_g) + (k_g/n) lam_g."""
    return batched_lambda_form(losses, lam, k, "srelu", delta)


def batched_mat_k(losses: torch.Tensor, lam: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """MAT_k per row: (1/n) sum [l_gi - lam_g]_+ + (k_g/n) lam_g."""
    return batched_lambda_form(losses, lam, k, "relu")
