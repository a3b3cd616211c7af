"""The core's precision rules, used by both axes (individual losses and aggregates).

- compute in fp32, keep fp64: `compute_dtype` / `upcast`. Half and bfloat16 cannot hold the
  smoothing math (SReLU overflows in fp16 for |x| > ~2.5; a lam near 30 has a step of 0.03).
- keep a tensor fp32 under .half() / .to(dtype): `keep_fp32`, for a module's `_apply`.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the core computes in: fp64 stays fp64; half, bfloat16 and fp32 become fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half and bfloat16 tensors as fp32; fp32 and fp64 unchanged."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def keep_fp32(module: nn.Module, names: Iterable[str], apply: Callable, fn, recurse: bool = True):
    """Run `apply(fn, recurse)` (the module's super()._apply) with the tensors `names` kept fp32.

    For a module's `_apply` override: `return keep_fp32(self, ("lam",), super()._apply, fn, recurse)`.
    Each named parameter (with its gradient) or buffer follows the device of the conversion but is
    restored from its value before it, as fp32, whatever dtype .half()/.to(dtype) asked for, so a
    round trip through fp16 does not round it. The same Parameter object stays registered (an
    optimizer holding it keeps working). Names the module does not have (yet) are skipped.
    """
    saved = {}
    for name in names:
        tensor = getattr(module, name, None)
        if isinstance(tensor, torch.Tensor):
            # .data aliases: _apply reassigns the .data of the parameter and of its grad in place.
            grad = tensor.grad if isinstance(tensor, nn.Parameter) else None
            saved[name] = (tensor.data, None if grad is None else grad.data)
    out = apply(fn, recurse)
    for name, (data, grad) in saved.items():
        current = getattr(module, name)
        device = current.device
        if isinstance(current, nn.Parameter):
            current.data = data.to(device=device, dtype=torch.float32)
            if grad is not None:
                current.grad = grad.to(device=device, dtype=torch.float32)
        else:
            setattr(module, name, data.to(device=device, dtype=torch.float32))
    return out
