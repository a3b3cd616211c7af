"""Argument checks of the perturbed top-k operator and the top-K hinge losses: clear ValueErrors
naming the argument and the value."""

from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple

import torch

from ...arguments import ArgumentNames, bad_argument

# How the noise is drawn (see truncation_margin and select_draws):
# "dense" draws (B, L, S) noise, pytopk's operator exactly; "lazy" draws noise only where it can
# matter, exact in distribution; "truncated" perturbs only each row's candidate classes with given
# noise; "auto" is, on the CPU, lazy (drawn noise) or truncated (given noise) on the rows whose
# candidate set is small and dense elsewhere, and dense on other devices (auto_noise_mode).
NOISE_MODES = ("auto", "dense", "truncated", "lazy")


def check_scores(scores: torch.Tensor) -> Tuple[int, int]:
    if not isinstance(scores, torch.Tensor):
        raise ValueError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 2 or not scores.is_floating_point():
        raise ValueError(f"scores must be a 2-D floating tensor (B, L), got shape {tuple(scores.shape)}, dtype={scores.dtype}")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores is empty (shape {tuple(scores.shape)})")
    return scores.shape[0], scores.shape[1]


def check_topk_args(k, epsilon, n_samples, n_classes: Optional[int] = None, k_name: str = "k", k_max: Optional[int] = None,
                    names: ArgumentNames = None) -> None:
    """k an integer in [1, k_max]; epsilon finite >= 0; n_samples an integer >= 1. Errors name the
    arguments as `names` says (core/arguments.py); k as k_name unless `names` gives it."""
    names = {"k": k_name, **(names or {})}
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise bad_argument("k", "must be an integer >= 1", k, names)
    if k_max is not None and k > k_max:
        raise bad_argument("k", f"must be <= {k_max} for L={n_classes} classes", k, names)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon) or epsilon < 0:
        raise bad_argument("epsilon", "must be a finite number >= 0", epsilon, names)
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise bad_argument("n_samples", "must be an integer >= 1", n_samples, names)


def check_noise(noise: Optional[torch.Tensor], shape: Tuple[int, int, int], device: torch.device) -> None:
    if noise is None:
        return
    if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
        raise ValueError(f"noise must be a floating torch.Tensor of shape {shape}, got {noise!r:.60}")
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise must have shape (B, L, S) = {tuple(shape)}, got noise.shape={tuple(noise.shape)}")
    if noise.device != device:
        raise ValueError(f"noise is on {noise.device} but scores are on {device}")


def check_noise_for_mode(noise: Optional[torch.Tensor], noise_mode: str) -> None:
    if noise is not None and noise_mode == "lazy":
        raise ValueError("noise_mode='lazy' draws its own noise (only where it can matter) and cannot use a given "
                         "noise tensor: pass noise_mode='dense' or 'truncated' with noise=...")


def check_noise_mode(noise_mode, tolerance, names: ArgumentNames = None) -> None:
    if noise_mode not in NOISE_MODES:
        raise bad_argument("noise_mode", f"must be one of {NOISE_MODES}", noise_mode, names)
    if (isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not math.isfinite(tolerance)
            or not 0 < tolerance < 1):
        raise bad_argument("tolerance", "must be a number in (0, 1)", tolerance, names)
