"""Atomic file writes shared by the CLIs: a crash or interrupt never leaves half a file behind.

Standard library only, so every part of the package (vision and experiments included) may use it.
The one writer of every file the package produces (text, JSON results, checkpoints, figures), and
the one JSON result reader. Also: a content hash of a file, and an exclusive lock on a folder that
dies with its holder.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call write(tmp_path) on a temporary file in path's folder, then rename it onto path.

    The temporary lives in the same folder (a rename within one file system is atomic), ends with
    suffix (writers such as savefig infer the format from it), gets the mode a plain open() would
    give, and is flushed to disk before the rename, so after a power cut path holds the old or the
    new content. It is removed if write fails or is interrupted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        # mkstemp creates 0600; a plain open() would give 0666 less the umask.
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync(path.parent)  # makes the rename itself durable
    return path


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        # Some file systems cannot fsync a directory; the rename is still atomic there.
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.EISDIR):
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str, suffix: str = ".tmp") -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    return atomic_write(path, write, suffix)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2, suffix: str = ".tmp") -> Path:
    """Writes obj as JSON (with a final newline) atomically: the one writer of JSON results."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n", suffix)


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file; a missing file raises FileNotFoundError, bad JSON a ValueError, each
    naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSON file not found: {str(path)!r}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FolderInUse(RuntimeError):
    pass


def lock_folder(folder: str | os.PathLike, what: str, lock_name: str = ".stk-lock") -> int:
    """Takes an exclusive flock on folder/lock_name and returns its descriptor (keep it open).

    The kernel releases the lock when every process holding the descriptor is gone (killed too),
    so a stale lock file never blocks. A folder already locked raises FolderInUse naming it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
            holder = path.read_text().strip() or "another process"
            raise FolderInUse(f"{folder} is in use by {holder} ({what}); wait for it to finish or stop it "
                              f"first (the lock {path} is released when that process ends)") from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()}\n".encode())
    return fd


@contextmanager
def locked_folder(folder: str | os.PathLike, what: str, lock_name: str = ".stk-lock",
                  take: bool = True) -> Iterator[int | None]:
    """lock_folder for the duration of a with block (take=False: no lock, for read-only callers)."""
    fd = lock_folder(folder, what, lock_name) if take else None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)
