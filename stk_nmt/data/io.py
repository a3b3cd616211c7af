"""Small file helpers shared by the preparation pipelines: atomic writes and checked reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from .. import files

# Every temporary path the pipelines create carries this suffix, so a re-run can tell its own
# leftovers (safe to remove) from files a user made (never touched).
TMP_SUFFIX = ".stk-tmp"


def atomic_write_lines(path: Path, lines: Iterable[str]) -> int:
    """Writes lines (without newlines) to path via a temporary file and a rename; returns the count.

    The temporary's name ends with TMP_SUFFIX: a re-run after a kill recognises and removes it."""
    count = 0

    def write(tmp: str) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                if "\n" in line:
                    raise ValueError(f"line {count + 1} for {path} contains a newline: {line!r}")
                handle.write(line + "\n")
                count += 1

    files.atomic_write(path, write, suffix=TMP_SUFFIX)
    return count


def atomic_write_text(path: Path, text: str) -> None:
    files.atomic_write_text(path, text, suffix=TMP_SUFFIX)


def read_lines(path: Path) -> list[str]:
    """Reads a UTF-8 text file as lines without trailing newlines (split on "\\n" only).

    A missing file names its path; text that is not UTF-8 names the file, line and byte offset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    lines, offset = [], 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path} is not UTF-8: line {number}, byte offset {offset + error.start} in the file "
                    f"(byte 0x{raw[error.start]:02x}); convert the file to UTF-8, e.g. with "
                    f"iconv -f <its encoding> -t UTF-8") from None
            lines.append(line.rstrip("\n").rstrip("\r"))
            offset += len(raw)
    return lines


def read_parallel(source_path: Path, target_path: Path) -> tuple[list[str], list[str]]:
    """Reads two line-aligned files; an empty corpus or differing line counts raise ValueError."""
    source, target = read_lines(source_path), read_lines(target_path)
    if len(source) != len(target):
        raise ValueError(
            f"line counts differ: {source_path} has {len(source)} lines, {target_path} has {len(target)}")
    if not any(line.strip() for line in source):
        raise ValueError(f"empty corpus: {source_path} has no non-blank line")
    return source, target


def check_no_blank_lines(source: list[str], target: list[str], source_path: Path, target_path: Path) -> None:
    """Evaluation sets are scored whole: a blank line on either side (which fairseq would not
    translate) stops preparation, naming the lines."""
    blank = [n for n, (s, t) in enumerate(zip(source, target), 1) if not s.strip() or not t.strip()]
    if blank:
        shown = ", ".join(map(str, blank[:20])) + (" ..." if len(blank) > 20 else "")
        raise ValueError(f"{len(blank)} blank line(s) in {source_path} / {target_path}, lines {shown}: an "
                         f"evaluation set is scored whole, so remove those lines from both files")


def remove_own_tmp(path: Path) -> None:
    """Removes a leftover temporary file or directory of ours (name ends with TMP_SUFFIX)."""
    path = Path(path)
    if not path.name.endswith(TMP_SUFFIX):
        raise ValueError(f"refusing to remove {path}: not a temporary path of the pipeline")
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
