"""cell_verify retrains archived cells and finds any value that moved (a smoke-mode cell: about a second)."""

import io
import json
import lzma
import tarfile

import pytest

from stk_nmt.experiments import cell_verify
from stk_nmt.experiments.binary_classification import load
from stk_nmt.experiments.cell_archive import archive_path, pack, read_cells
from stk_nmt.experiments.table_runs import CellJob, train_cell


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Repeat 0 of a smoke-mode wisconsin/logistic/stk cell, packed as a grid run packs it."""
    root = tmp_path_factory.mktemp("cells")
    cells, archive_dir = root / "cells", root / "smoke-seed3"
    cells.mkdir()
    train_cell(CellJob(load, "classification", "wisconsin", "logistic", "stk", 0, "smoke", 3,
                       cells / "wisconsin__logistic__stk__0.json"), progress=False)
    pack(cells, archive_dir, per_repeat=1)
    return archive_dir


def rewrite(archive_dir, edit):
    """Replace the one cell of repeat 0's archive by edit(cell)."""
    path = archive_path(archive_dir, 0)
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(path.read_bytes()))) as tar:
        member = tar.getmembers()[0]
        cell = json.loads(tar.extractfile(member).read())
    text = json.dumps(edit(cell)).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(member.name)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    path.write_bytes(lzma.compress(buffer.getvalue()))


def test_a_retrained_cell_is_identical_and_a_moved_value_is_found(archive, tmp_path, capsys):
    # The seed comes from the folder's name (-seed3), as in docs/results-cells/<grid>/<mode>-seed<N>.
    assert cell_verify.main(["--archive", str(archive), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 0
    assert "wisconsin__logistic__stk__0: identical" in capsys.readouterr().out
    # Another seed trains another split: the same cell then differs.
    assert cell_verify.verify(archive, 0, ["wisconsin__logistic__stk"], seed=4)[0][1] is not None

    moved = tmp_path / "moved-seed3"
    moved.mkdir()
    archive_path(moved, 0).write_bytes(archive_path(archive, 0).read_bytes())

    def nudge(cell):  # the last bit of one grid point's validation loss
        value = cell["grid"][0]["val_loss"]
        cell["grid"][0]["val_loss"] = value + abs(value) * 2.0 ** -52
        cell["seconds"] = 0.0  # wall-clock time is not compared
        return cell

    rewrite(moved, nudge)
    assert cell_verify.main(["--archive", str(moved), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 1
    assert "DIFFERS at .grid[0].val_loss" in capsys.readouterr().out


def test_errors_name_the_argument(archive):
    with pytest.raises(SystemExit):
        cell_verify.main(["--archive", str(archive), "--repeat", "7", "--cells", "wisconsin__logistic__stk"])
    with pytest.raises(ValueError, match="--cells german__logistic__stk: not in .* it holds wisconsin__logistic__stk"):
        cell_verify.verify(archive, 0, ["german__logistic__stk"], seed=3)


def test_first_difference():
    assert cell_verify.first_difference({"a": [1.0, 2.0], "seconds": 1}, {"a": [1.0, 2.0], "seconds": 2}) is None
    assert cell_verify.first_difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.5]}) == ".a[1]: 2.0 (archived) vs 2.5 (retrained)"
    assert cell_verify.first_difference({"a": 1}, {"a": 1.0}) == ".a: 1 (archived) vs 1.0 (retrained)"
    assert cell_verify.first_difference({"a": 1}, {"b": 1}) == ".a: present in only one of them"


def test_a_cell_records_its_host_and_verify_compares_the_capability(archive, tmp_path, capsys):
    """The last bits depend on the vector instruction set torch dispatches to (stk_nmt/host.py):
    a cell records it, a retrain ignores where it ran, and says whether bit for bit is expected."""
    import torch

    here = torch.backends.cpu.get_cpu_capability()
    (_, text, _), = read_cells(archive_path(archive, 0))
    cell = json.loads(text)
    assert cell["host"]["cpu_capability"] == here and cell["host"]["torch"] == torch.__version__
    assert cell_verify.main(["--archive", str(archive), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 0
    assert f"torch CPU capability {here}, as the archived cells record: bit for bit is expected" in capsys.readouterr().out

    other = tmp_path / "other-seed3"
    other.mkdir()
    archive_path(other, 0).write_bytes(archive_path(archive, 0).read_bytes())
    elsewhere = "AVX2" if here != "AVX2" else "AVX512"  # another instruction set than this host's
    rewrite(other, lambda c: {**c, "host": {**c["host"], "cpu_capability": elsewhere, "cpu": "another CPU"}})
    assert cell_verify.main(["--archive", str(other), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 0
    assert f"torch CPU capability {here} here, {elsewhere} in the archive: last-bit differences" in capsys.readouterr().out
    rewrite(other, lambda c: {**c, "code": {**c["code"], "source_sha256": "0" * 16}})  # code is ignored too
    assert cell_verify.main(["--archive", str(other), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 0
    capsys.readouterr()
    rewrite(other, lambda c: {k: v for k, v in c.items() if k != "host"})  # cells archived before hosts were
    assert cell_verify.main(["--archive", str(other), "--repeat", "0", "--cells", "wisconsin__logistic__stk"]) == 0
    assert "the archive does not record its host's" in capsys.readouterr().out
