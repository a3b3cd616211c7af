"""Resumable, verified downloads of corpus archives, or the same checks on a local archive.

A download goes to `<name>.part` and resumes from its size with an HTTP Range request; when the
server's size (Content-Length) or a given sha256 does not match, the file is refused. Once
complete, its sha256 is written beside it (`<name>.sha256`) and checked again on every re-use, so
a file that was truncated or changed later is caught. Archives are also read through once
(gzip CRC, tar headers) before extraction so a corrupt file fails early with its path named.
"""

from __future__ import annotations

import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..files import atomic_write_text, file_sha256


@dataclass(frozen=True)
class Archive:
    """One downloadable file; sha256 None means "not pinned": the first complete download is
    recorded and later re-uses are checked against that record."""

    name: str
    url: str | None
    sha256: str | None = None
    note: str = ""


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify(path: Path, sha256: str | None = None) -> str:
    """Checks a complete file against the pinned sha256 and its own record; returns its sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"archive not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"archive {path} is empty (0 bytes)")
    actual = file_sha256(path)
    if sha256 and actual != sha256.lower():
        raise ValueError(f"archive {path} is corrupt: sha256 {actual}, expected {sha256}")
    record = _record_path(path)
    if record.is_file():
        recorded = record.read_text().split()[0]
        if recorded != actual:
            raise ValueError(f"archive {path} changed since it was downloaded: sha256 {actual}, "
                             f"recorded {recorded} in {record}")
    return actual


def check_tar(path: Path) -> list[str]:
    """Reads a (gzipped) tar archive through; returns its member names or raises ValueError."""
    try:
        with tarfile.open(path, "r:*") as tar:
            names = []
            for member in tar:
                names.append(member.name)
                if member.isfile():
                    handle = tar.extractfile(member)
                    while handle.read(1 << 20):
                        pass
            return names
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"archive {path} is corrupt or not a tar archive: {error}") from error


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Downloads url to dest, resuming a partial `<dest>.part`; verifies size and checksum."""
    dest = Path(dest)
    if dest.is_file():
        verify(dest, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except OSError as error:
        raise OSError(f"cannot download {url}: {error}. On a machine without internet access, "
                      f"download it elsewhere and pass the file with --archive") from error
    with response:
        if offset and response.status != 206:  # server ignored Range: start again
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as handle, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                handle.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise ValueError(f"download of {url} is incomplete: {part.stat().st_size} of {total} bytes "
                         f"in {part}; run again to resume")
    actual = file_sha256(part)
    if sha256 and actual != sha256.lower():
        raise ValueError(f"downloaded {part} is corrupt: sha256 {actual}, expected {sha256}; "
                         f"delete it and run again")
    os.replace(part, dest)
    atomic_write_text(_record_path(dest), f"{actual}  {dest.name}\n")
    return dest


def obtain(archive: Archive, local: Path | None, download_dir: Path) -> Path:
    """A local archive path when given (verified), else the file downloaded into download_dir."""
    if local is not None:
        local = Path(local)
        if local.is_dir():
            local = local / archive.name
        verify(local, archive.sha256)
        return local
    if archive.url is None:
        raise FileNotFoundError(
            f"{archive.name} cannot be downloaded automatically ({archive.note}); "
            f"pass the local file")
    return download(archive.url, Path(download_dir) / archive.name, archive.sha256)
