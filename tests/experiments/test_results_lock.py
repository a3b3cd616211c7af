"""make_results takes a lock per example in --out: a second run of the same example is refused."""

import os

import pytest

from stk_nmt.experiments import make_results
from stk_nmt.files import FolderInUse, lock_folder


def test_a_second_make_results_of_the_same_example_is_refused(tmp_path):
    out = tmp_path / "results"
    held = lock_folder(out, "make_results running timing", ".stk-lock.timing")  # as a running make_results holds it
    try:
        with pytest.raises(FolderInUse, match=f"{out} is in use by process {os.getpid()}"):
            make_results.main(["--only", "timing", "--mode", "smoke", "--out", str(out), "--full-logistic", "none",
                               "--docs", str(tmp_path / "docs")], root=tmp_path)
    finally:
        os.close(held)
    assert not (out / "timing.json").exists() and not (tmp_path / "docs" / "results.md").exists()
