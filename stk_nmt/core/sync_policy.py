"""The core's one sync policy for checks that read tensor values back to the host.

Argument types and shapes are always checked. Checks of *values* (label ranges, non-finite losses
or lam) run on the CPU only: off the CPU each would make the host wait for the device on every
training step. There an out-of-range label trips the device's own index check, and a NaN/inf
propagates into the result, as in torch's own losses (fp16 loss scaling then skips the step).
"""

from __future__ import annotations

import torch


def checks_values(tensor: torch.Tensor) -> bool:
    """Whether checks may read `tensor`'s values back to the host (on the CPU only)."""
    return tensor.device.type == "cpu"
