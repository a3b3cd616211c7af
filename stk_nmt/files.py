"""Atomic file writes shared by the CLIs: a crash or interrupt never leaves half a file behind.

Standard library only, so every part of the package (vision and experiments included) may use it.
The data pipelines keep their own fixed-suffix temporaries (stk_nmt/data/io.py) because a re-run
must recognise its leftovers by name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call write(tmp_path) on a temporary file in path's folder, then rename it onto path.

    The temporary file is removed if write fails or is interrupted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    return atomic_write(path, write)
