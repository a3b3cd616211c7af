"""Sums and means over the processes of torch.distributed (the value itself when not distributed)."""

from __future__ import annotations

import torch


def world_size() -> int:
    """The number of processes of the default group; 1 when torch.distributed is not in use."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def sum_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The sum of `value` over the processes (a new tensor; `value` is left alone)."""
    if world_size() > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
    return value


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the processes."""
    size = world_size()
    return sum_over_processes(value) / size if size > 1 else value
