"""Killing a table run that trains cells in worker processes (--workers N) ends the workers too.

A long grid runs in the background (`nohup ... &`, where SIGINT is ignored), so it is stopped with
`kill`: SIGTERM to the main process, which dies at once. Its pool workers must not outlive it (they
would sit on their memory, or keep training, for good), and every cell finished so far stays whole.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A guard against a hung test, not a measured time: every wait ends long before it.
DEADLINE_S = 180

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def workers_of(pid: int):
    """The multiprocessing workers among the children of pid."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in (children.read_text().split() if children.exists() else []):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except FileNotFoundError:
            pass
    return found


def running(pid: int) -> bool:
    """pid exists and is not a zombie (an orphan's zombie lingers until its new parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition, what: str):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_killed_grid_run_takes_its_workers_with_it_and_leaves_whole_cells(tmp_path):
    out = tmp_path / "run"
    cells = out / "cells" / "full-seed0"
    process = subprocess.Popen(
        [sys.executable, "examples/binary_classification.py", "--mode", "full", "--datasets", "wisconsin",
         "--losses", "logistic", "--workers", "2", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    workers = []
    try:
        wait_until(lambda: len(workers_of(process.pid)) == 2, "two workers")
        workers = workers_of(process.pid)
        # A second run of the same grid is refused while this one trains (it would train the same cells).
        from stk_nmt.experiments import binary_classification
        from stk_nmt.files import FolderInUse

        with pytest.raises(FolderInUse, match=f"{out / 'cells'} is in use by process {process.pid}"):
            binary_classification.main(["--mode", "full", "--datasets", "wisconsin", "--losses", "logistic",
                                        "--out", str(out)])
        wait_until(lambda: any(cells.glob("*.json")), "a finished cell")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE_S)
        wait_until(lambda: not any(running(w) for w in workers), "the workers to end with the main process")
        finished = list(cells.glob("*.json"))
        assert finished
        for cell in finished:
            assert json.loads(cell.read_text())["grid"]  # whole: parses, and holds its grid
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for w in workers:
            if running(w):
                os.kill(w, signal.SIGKILL)
