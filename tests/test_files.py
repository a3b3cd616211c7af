"""The shared atomic write: the target is replaced whole or not at all, and no temporary is left."""

import json
import os
import stat

import pytest

from stk_nmt.data.io import atomic_write_lines
from stk_nmt.files import atomic_write, atomic_write_text, read_json, write_json


def test_atomic_write_text_creates_folders_and_replaces(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_write_text(path, "first\n")
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_text(path, "old")

    def half_then_crash(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_temporary_keeps_the_suffix_for_writers_that_infer_the_format(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()), suffix=".png")
    assert seen[0].endswith(".png") and (tmp_path / "plot.png").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_mode_a_plain_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        atomic_write_text(tmp_path / "atomic", "x")
        atomic_write_lines(tmp_path / "lines", ["x"])  # the data pipelines' writer
    finally:
        os.umask(old)
    expected = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert expected == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "atomic").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "lines").stat().st_mode) == expected


def test_the_temporary_is_flushed_to_disk_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b)))
    atomic_write_text(tmp_path / "r.txt", "x")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert os.path.dirname(events[0][1]) == str(tmp_path) and events[0][1] != str(tmp_path / "r.txt")
    assert events[1][1] == str(tmp_path / "r.txt") and events[2][1] == str(tmp_path)


def test_write_json_round_trips_and_read_json_names_the_path(tmp_path):
    path = tmp_path / "out" / "result.json"
    obj = {"bleu": 27.5, "runs": [1, 2], "name": "ST_k ≥ AT_k"}
    write_json(path, obj, indent=1)
    assert read_json(path) == obj
    assert path.read_text(encoding="utf-8") == json.dumps(obj, indent=1) + "\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "torn.json").write_text('{"bleu": 2')
    with pytest.raises(ValueError, match="torn.json"):
        read_json(tmp_path / "torn.json")


def test_experiments_reexports_the_one_json_writer():
    from stk_nmt.experiments import files as experiment_files
    from stk_nmt import files

    assert experiment_files.write_json is files.write_json and experiment_files.read_json is files.read_json
