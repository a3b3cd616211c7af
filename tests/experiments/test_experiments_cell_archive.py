"""Cell archives: whole repeats packed once, unpacked byte for byte, nothing outside the cells folder."""

import io
import json
import os
import tarfile

import pytest

from stk_nmt.experiments.cell_archive import main, pack, unpack


def write_cells(folder, repeats, names=("a__logistic__stk", "b__logistic__stk")):
    folder.mkdir(parents=True, exist_ok=True)
    for r in repeats:
        for name in names:
            (folder / f"{name}__{r}.json").write_text(json.dumps({"cell": name, "repeat": r, "test": 0.1 * r}))


def test_only_whole_repeats_are_packed_and_never_rewritten(tmp_path):
    cells, archive = tmp_path / "cells", tmp_path / "archive"
    write_cells(cells, [0, 1])
    (cells / "a__logistic__stk__2.json").write_text("{}")  # repeat 2 is half done
    assert [p.name for p in pack(cells, archive, per_repeat=2)] == ["repeat-000.tar.xz", "repeat-001.tar.xz"]
    with tarfile.open(archive / "repeat-001.tar.xz") as tar:
        assert sorted(tar.getnames()) == ["a__logistic__stk__1.json", "b__logistic__stk__1.json"]
    before = (archive / "repeat-000.tar.xz").stat().st_mtime_ns
    (cells / "b__logistic__stk__2.json").write_text("{}")
    assert [p.name for p in pack(cells, archive, per_repeat=2)] == ["repeat-002.tar.xz"]
    assert (archive / "repeat-000.tar.xz").stat().st_mtime_ns == before


def test_unpack_restores_the_cells_byte_for_byte_and_keeps_existing_ones(tmp_path):
    cells, archive, fresh = tmp_path / "cells", tmp_path / "archive", tmp_path / "fresh"
    write_cells(cells, [0, 1])
    pack(cells, archive, per_repeat=2)
    fresh.mkdir()
    (fresh / "a__logistic__stk__0.json").write_text("kept")  # a cell the resumed run already has
    written = unpack(archive, fresh)
    assert len(written) == 3
    assert (fresh / "a__logistic__stk__0.json").read_text() == "kept"
    for path in cells.iterdir():
        if path.name != "a__logistic__stk__0.json":
            assert (fresh / path.name).read_bytes() == path.read_bytes()
    assert unpack(archive, fresh) == []


def test_unpacked_cells_keep_the_time_they_finished_so_a_rerendered_page_states_the_same_run_time(tmp_path):
    # A cell's mtime is when it finished: the summary's wall-clock run time is measured from it.
    from stk_nmt.experiments.table_runs import summarize

    cells, archive, fresh = tmp_path / "cells", tmp_path / "archive", tmp_path / "fresh"
    cells.mkdir()
    finished = {0: 1_700_000_000, 1: 1_700_036_000}  # repeat 1 ends ten hours after repeat 0
    for r, when in finished.items():
        for m in ("average", "stk"):
            path = cells / f"wisconsin__logistic__{m}__{r}.json"
            grid = [{"k": 0.5, "C": 1.0, "lr": 0.1, "delta": 0.01, "val": 1.0, "val_loss": 0.3, "test": 2.0}]
            path.write_text(json.dumps({"repeat": r, "seconds": 60.0, "selected": grid[0], "grid": grid}))
            os.utime(path, (when, when))
    pack(cells, archive, per_repeat=2)
    unpack(archive, fresh)
    for path in cells.iterdir():
        assert (fresh / path.name).stat().st_mtime == path.stat().st_mtime
    args = (["wisconsin"], ["logistic"], ["average", "stk"], 2)
    assert summarize(fresh, *args)["wall_seconds_cells"] == summarize(cells, *args)["wall_seconds_cells"] == 36_060.0


def test_a_member_that_is_not_a_cell_is_refused(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    with tarfile.open(archive / "repeat-000.tar.xz", "w:xz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../outside__0.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"\.\./outside__0\.json"):
        unpack(archive, tmp_path / "cells")
    assert not (tmp_path / "outside__0.json").exists()


def test_a_bad_member_after_good_ones_writes_nothing(tmp_path):
    # Defect 17: today the cells before the bad member are already written when it is refused.
    cells, archive = tmp_path / "cells", tmp_path / "archive"
    write_cells(cells, [0, 1])
    pack(cells, archive, per_repeat=2)
    with tarfile.open(archive / "repeat-002.tar.xz", "w:xz") as tar:
        for name, data in (("a__logistic__stk__2.json", b"{}"), ("notes.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=r"repeat-002\.tar\.xz.* holds 'notes\.txt'"):
        unpack(archive, fresh)
    assert not fresh.exists() or list(fresh.iterdir()) == []


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.0])
def test_a_truncated_archive_is_named_and_nothing_is_written(tmp_path, keep):
    # Defect 13: today a truncated archive fails with a bare EOFError (or LZMAError) naming no archive.
    cells, archive, fresh = tmp_path / "cells", tmp_path / "archive", tmp_path / "fresh"
    write_cells(cells, [0, 1])
    pack(cells, archive, per_repeat=2)
    data = (archive / "repeat-001.tar.xz").read_bytes()
    (archive / "repeat-001.tar.xz").write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"repeat-001\.tar\.xz.* is truncated or damaged"):
        unpack(archive, fresh)
    assert not fresh.exists()  # repeat-000, read first and whole, is not written either


def test_bad_arguments_name_the_value(tmp_path):
    write_cells(tmp_path / "cells", [0])
    with pytest.raises(ValueError, match="per_repeat=1"):
        pack(tmp_path / "cells", tmp_path / "archive", per_repeat=1)  # 2 cells in repeat 0
    with pytest.raises(ValueError, match="per_repeat=0"):
        pack(tmp_path / "cells", tmp_path / "archive", per_repeat=0)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        unpack(tmp_path / "nowhere", tmp_path / "cells")
    with pytest.raises(SystemExit):
        main(["pack", "--cells", str(tmp_path / "cells"), "--archive", str(tmp_path / "archive")])


def test_a_table_run_packs_each_finished_repeat_and_resumes_elsewhere_from_the_archive(tmp_path, monkeypatch):
    from stk_nmt.experiments import binary_classification, table_runs

    archive = tmp_path / "archive"
    args = ["--mode", "smoke", "--datasets", "wisconsin", "--losses", "logistic", "--methods", "average", "stk",
            "--repeats", "2", "--cell-archive", str(archive)]
    first = binary_classification.main(args + ["--out", str(tmp_path / "first")])
    assert sorted(p.name for p in archive.iterdir()) == ["repeat-000.tar.xz", "repeat-001.tar.xz"]
    with tarfile.open(archive / "repeat-001.tar.xz") as tar:
        assert sorted(tar.getnames()) == ["wisconsin__logistic__average__1.json", "wisconsin__logistic__stk__1.json"]

    def no_training(*a, **k):
        raise AssertionError("a cell in the archive was trained again")

    monkeypatch.setattr(table_runs, "train_grid", no_training)
    second = binary_classification.main(args + ["--out", str(tmp_path / "second")])
    assert [(r["mean"], r["std"]) for r in second["rows"]] == [(r["mean"], r["std"]) for r in first["rows"]]
    cells = tmp_path / "second" / "cells" / "smoke-seed0"
    for path in (tmp_path / "first" / "cells" / "smoke-seed0").iterdir():
        assert (cells / path.name).read_bytes() == path.read_bytes()


def test_pack_by_stems_takes_only_the_named_cells(tmp_path):
    cells = tmp_path / "cells"
    write_cells(cells, [0], names=("a__logistic__stk", "a__hinge__stk"))
    assert pack(cells, tmp_path / "archive", stems=["a__logistic__stk", "b__logistic__stk"]) == []  # b missing
    [written] = pack(cells, tmp_path / "archive", stems=["a__logistic__stk"])
    with tarfile.open(written) as tar:
        assert tar.getnames() == ["a__logistic__stk__0.json"]
    with pytest.raises(ValueError, match="one of per_repeat and stems"):
        pack(cells, tmp_path / "archive", per_repeat=1, stems=["a__logistic__stk"])
