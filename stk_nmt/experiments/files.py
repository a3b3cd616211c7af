"""Atomic result files (JSON, CSV, figures) and the results directory."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Mapping

# write_json / read_json live in stk_nmt.files (one JSON writer for the package); re-exported here
# for the examples that import them from this module.
from stk_nmt.files import atomic_write, atomic_write_text, read_json, write_json  # noqa: F401


def results_dir(out: str | os.PathLike) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out must be a directory, got out={str(path)!r} (a file)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping], fieldnames=None) -> None:
    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(rows[0]) if rows else []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), buf.getvalue())


def save_figure(fig, path: str | os.PathLike, dpi: int = 80) -> None:
    """Save a matplotlib figure atomically (small PNGs: they are committed under docs/img/)."""
    # savefig infers the format from the file name, so the temporary keeps the suffix.
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"), suffix=Path(path).suffix)
