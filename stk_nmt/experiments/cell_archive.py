"""Keep a long tabular run's finished cells across machines: one compressed archive per whole repeat.

A full-protocol grid takes days on 2 cores, longer than one working session, and its cells/ folder
(one JSON per dataset, loss, aggregate and repeat) lives under the ignored results/ directory. `pack`
writes every repeat whose cells are all finished into <archive>/repeat-NNN.tar.xz (once: an existing
archive is never rewritten, so a repository that commits the archives only ever adds files);
`unpack` puts the cells of every archive back into a cells folder, with the times they finished,
skipping those already there, so that the run resumes where the archives stop. `unpack` is all or
nothing: a truncated or damaged archive, or one holding anything but flat cell files, is named and
nothing is written.

    python -m stk_nmt.experiments.cell_archive pack   --cells results/full-logistic/cells/full-seed0 \
        --archive docs/results-cells/full-logistic-seed0 --per-repeat 30
    python -m stk_nmt.experiments.cell_archive unpack --cells results/full-logistic/cells/full-seed0 \
        --archive docs/results-cells/full-logistic-seed0

Written with the standard library's tarfile (xz): JSON cells of floats compress about 15 times.
"""

from __future__ import annotations

import argparse
import io
import lzma
import os
import re
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from stk_nmt.files import atomic_write, atomic_write_text

CELL_NAME = re.compile(r"^(?P<cell>[A-Za-z0-9_.-]+?)__(?P<repeat>\d+)\.json$")
ARCHIVE_NAME = re.compile(r"^repeat-(?P<repeat>\d{3,})\.tar\.xz$")


def archive_path(archive_dir: Path, repeat: int) -> Path:
    return Path(archive_dir) / f"repeat-{repeat:03d}.tar.xz"


def cells_by_repeat(cells_dir: Path) -> Dict[int, List[Path]]:
    """The finished cell files of a cells folder, grouped by the repeat their name ends with."""
    groups: Dict[int, List[Path]] = defaultdict(list)
    for path in sorted(Path(cells_dir).glob("*.json")):
        match = CELL_NAME.match(path.name)
        if match:
            groups[int(match["repeat"])].append(path)
    return dict(groups)


def pack(cells_dir: Path, archive_dir: Path, per_repeat: Optional[int] = None,
         stems: Optional[Sequence[str]] = None) -> List[Path]:
    """Archive every whole repeat that has no archive yet; returns the new archives.

    A repeat is whole when it has all the cells named by `stems` (cell names without the repeat,
    "dataset__loss__method": then only those are archived) or, for a folder holding one run's cells,
    `per_repeat` cells. A repeat short of that is still running (or was stopped) and is left for a later pack."""
    if (per_repeat is None) == (stems is None):
        raise ValueError(f"give one of per_repeat and stems, got per_repeat={per_repeat!r}, stems={stems!r}")
    if per_repeat is not None and per_repeat < 1:
        raise ValueError(f"per_repeat must be >= 1, got per_repeat={per_repeat}")
    cells_dir, archive_dir = Path(cells_dir), Path(archive_dir)
    if not cells_dir.is_dir():
        raise FileNotFoundError(f"cells folder not found: cells={str(cells_dir)!r}")
    written = []
    for repeat, paths in sorted(cells_by_repeat(cells_dir).items()):
        if stems is not None:
            paths = [cells_dir / f"{stem}__{repeat}.json" for stem in stems]
            whole = all(path.is_file() for path in paths)
        elif len(paths) > per_repeat:
            raise ValueError(f"repeat {repeat} has {len(paths)} cells in {str(cells_dir)!r}, more than "
                             f"per_repeat={per_repeat}: is per_repeat the number of datasets x losses x aggregates?")
        else:
            whole = len(paths) == per_repeat
        target = archive_path(archive_dir, repeat)
        if not whole or target.exists():
            continue
        archive_dir.mkdir(parents=True, exist_ok=True)

        def write(tmp: str, paths=paths) -> None:
            with tarfile.open(tmp, "w:xz") as tar:
                for path in paths:
                    tar.add(path, arcname=path.name)  # flat: unpack needs no folders

        atomic_write(target, write, suffix=".tar.xz")
        written.append(target)
    return written


def read_cells(archive: Path) -> List[Tuple[str, str, int]]:
    """(name, text, mtime) of every cell in one archive, read through to its end: a truncated or
    damaged archive, or a member that is not a flat cell file, raises ValueError naming the archive."""
    cells = []
    try:
        # Decompressed whole first: tarfile stops at the end-of-archive blocks and never sees a
        # stream cut after them; lzma checks the stream to its end marker and its checksum.
        with tarfile.open(fileobj=io.BytesIO(lzma.decompress(archive.read_bytes()))) as tar:
            for member in tar:
                if not (member.isfile() and CELL_NAME.match(member.name)):
                    raise ValueError(f"archive {str(archive)!r} holds {member.name!r}, which is not a cell file")
                text = tar.extractfile(member).read().decode("utf-8")
                cells.append((member.name, text, member.mtime))
    except (tarfile.TarError, EOFError, lzma.LZMAError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"archive {str(archive)!r} is truncated or damaged ({type(error).__name__}: {error}); "
                         f"restore it (for example git checkout -- {archive}) and unpack again") from error
    return cells


def unpack(archive_dir: Path, cells_dir: Path) -> List[Path]:
    """Write the cells of every archive in archive_dir that cells_dir lacks; returns the files written.

    All or nothing: every archive is read through and checked before the first cell is written, so
    a damaged archive or a bad member leaves cells_dir as it was. Only flat member names that look
    like cells are accepted (an archive cannot write outside cells_dir)."""
    archive_dir, cells_dir = Path(archive_dir), Path(cells_dir)
    if not archive_dir.is_dir():
        raise FileNotFoundError(f"archive folder not found: archive={str(archive_dir)!r}")
    cells = [cell for archive in sorted(archive_dir.iterdir()) if ARCHIVE_NAME.match(archive.name)
             for cell in read_cells(archive)]
    written = []
    for name, text, mtime in cells:
        target = cells_dir / name
        if target.exists():
            continue
        cells_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        # A cell's mtime is when it finished; the summary's wall-clock run time is read from it.
        os.utime(target, (mtime, mtime))
        written.append(target)
    return written


def main(argv: Optional[List[str]] = None) -> List[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("pack", "unpack"))
    parser.add_argument("--cells", required=True, type=Path, help="a run's cells folder (<out>/cells/<mode>-seed<seed>)")
    parser.add_argument("--archive", required=True, type=Path, help="the folder of repeat-NNN.tar.xz archives")
    parser.add_argument("--per-repeat", type=int,
                        help="pack: cells in one whole repeat (datasets x losses x aggregates)")
    args = parser.parse_args(argv)
    if args.action == "pack":
        if args.per_repeat is None:
            parser.error("pack needs --per-repeat (datasets x losses x aggregates of the run)")
        done = pack(args.cells, args.archive, per_repeat=args.per_repeat)
        print(f"packed {len(done)} new repeat(s) into {args.archive}")
    else:
        done = unpack(args.archive, args.cells)
        print(f"unpacked {len(done)} cell(s) into {args.cells}")
    return done


if __name__ == "__main__":
    main()
