"""What a record says about where it was computed: the machine, and the code.

The last bits of a CPU computation depend on the host: torch picks its vectorised kernels by the
CPU's instruction set (torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512...; the
environment variable ATEN_CPU_CAPABILITY lowers it), and those kernels round differently. A record
that holds the capability tells whether a retrained result can be expected to match it bit for bit.
The same holds for the code: a record that names the package source that computed it tells whether
two records came from the same computation.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

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


PACKAGE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def describe_code() -> dict:
    """The package version, a digest of the package's Python source (what computed the record, for a
    pip install as for a checkout) and, in a git checkout, its commit and whether the package's files
    differ from it. Computed once per process."""
    from . import __version__

    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    code = {"stk_nmt": __version__, "source_sha256": digest.hexdigest()[:16], "commit": None, "modified": None}
    try:
        commit = subprocess.run(["git", "-C", str(PACKAGE), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            status = subprocess.run(["git", "-C", str(PACKAGE), "status", "--porcelain", "--", "."],
                                    capture_output=True, text=True, timeout=10)
            code["commit"] = commit.stdout.strip()
            code["modified"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass  # no git, or not a checkout: the source digest still names the code
    return code


def code_name(code: Optional[dict]) -> Optional[str]:
    """How a page names the code a record holds (None: the record does not hold it)."""
    if not code:
        return None
    name = f"package source `{code['source_sha256']}`"
    if code.get("commit"):
        name += f" (commit `{code['commit'][:10]}`{', with local changes' if code.get('modified') else ''})"
    return name
