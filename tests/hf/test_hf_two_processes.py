"""Two CPU processes through `accelerate launch` (gloo): lam is identical on both ranks at every step."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
ROOT = HELPERS.parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_accelerate_run_keeps_lam_identical_on_every_rank(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HELPERS)]), OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    # --multi_gpu is accelerate's torchrun launcher; the driver's use_cpu=True makes it CPU processes on gloo
    # (accelerate's --cpu with several processes expects an MPI launcher instead).
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(HELPERS / "hf_rank_driver.py"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    ranks = [[json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()] for r in range(2)]
    steps = [[row for row in rank if row["step"] != "final"] for rank in ranks]
    assert len(steps[0]) == len(steps[1]) == 4
    # Each rank sees its own batches (different k-th largest losses) ...
    assert any(a["kth_loss"] != b["kth_loss"] for a, b in zip(*steps))
    # ... yet uses exactly the same lam at every step, lam moves, and ends the same.
    assert [a["lam_used"] for a in steps[0]] == [b["lam_used"] for b in steps[1]]
    assert len({a["lam_used"] for a in steps[0]}) > 1
    assert ranks[0][-1]["lam_stored"] == ranks[1][-1]["lam_stored"]
    # lam starts at the mean over the ranks of their first batch's k-th largest loss.
    assert steps[0][0]["lam_used"] == pytest.approx((steps[0][0]["kth_loss"] + steps[1][0]["kth_loss"]) / 2, rel=1e-6)
