"""Records the pages re-render from are committed, so git must not ignore them.

A bare `runs/` pattern in .gitignore once hid docs/study-runs/<pair>/runs/*.tar.xz: the grid wrote
its records and a fresh clone had none of them.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from stk_nmt.translation.study.records import run_archive_path

ROOT = Path(__file__).resolve().parents[1]

RECORD_PATHS = [
    run_archive_path(Path("docs/study-runs/fr"), "baseline", 1),
    Path("docs/results-cells/gaussian/full-seed0/repeat-000.tar.xz"),
]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout")
@pytest.mark.parametrize("path", RECORD_PATHS, ids=str)
def test_committed_record_paths_are_not_ignored(path):
    result = subprocess.run(["git", "check-ignore", "--no-index", "-v", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    # check-ignore exits 1 when the path is not ignored, 0 when a pattern ignores it.
    assert result.returncode == 1, f"{path} is ignored by {result.stdout.strip()}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout")
@pytest.mark.parametrize("path", ["work/x", "runs/x", "results/x", "checkpoints/x.pt"])
def test_scratch_folders_stay_ignored(path):
    result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
    assert result.returncode == 0
