"""What a record says about the machine it was computed on.

The last bits of a CPU computation depend on the host: torch picks its vectorised kernels by the
CPU's instruction set (torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512...; the
environment variable ATEN_CPU_CAPABILITY lowers it), and those kernels round differently. A record
that holds the capability tells whether a retrained result can be expected to match it bit for bit.
"""

from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return model or platform.processor()


def describe_host() -> dict:
    """The CPU, its core count, the vector instruction set torch dispatches to, torch's version and
    the system: enough to tell whether two records can agree to the last bit."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "system": platform.platform()}
