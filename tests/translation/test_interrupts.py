"""Kill -9 (and SIGTERM, Ctrl-C) at chosen points of the prepare and training commands, then rerun.

Each command is started as a real subprocess with STK_NMT_HOLD_AT=<point>: on reaching that point
it writes "<pid> <child pid>" to STK_NMT_HOLD_FILE and waits to be killed (stk_nmt/processes.py).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fairseq_tiny import TINY_ARCH, env, make_corpus, run
from stk_nmt.data.pipeline import LOCK_FILE
from stk_nmt.files import FolderInUse, lock_folder
from stk_nmt.processes import HOLD_AT, HOLD_FILE
from stk_nmt.translation import recipes
from stk_nmt.translation.resume import unreadable_reason

pytestmark = pytest.mark.slow

# A guard against a hung test, not a measured time: every wait ends long before it.
DEADLINE_S = 300


_STARTED = []


@pytest.fixture(autouse=True)
def kill_leftovers():
    """A failing test must not leave a command waiting at its hold point."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def default_sigint():
    # A shell's background job ignores SIGINT, and children inherit that; a terminal's Ctrl-C
    # reaches a command with the default handling, which is what is tested.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(module, *args, hold_at, hold_file):
    process = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint,
                               env={**env(), HOLD_AT: hold_at, HOLD_FILE: str(hold_file)})
    _STARTED.append(process)
    return process


def wait_for_hold(process, hold_file):
    """(pid that holds, child pid or None) once the command reaches its hold point."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if hold_file.is_file():
            fields = hold_file.read_text().split()
            return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)
        if process.poll() is not None:
            pytest.fail(f"the command ended ({process.returncode}) without reaching its hold point:\n"
                        f"{process.stdout.read()[-3000:]}")
        time.sleep(0.1)
    process.kill()
    pytest.fail("no hold point reached before the deadline")


def running(pid):
    """True while pid exists and is not a zombie (a dead process not yet reaped by its parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def wait_gone(pid):
    deadline = time.monotonic() + DEADLINE_S
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


def tree_hashes(root, skip=(LOCK_FILE, ".stk-train.lock")):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file() and p.name not in skip}


# --- prepare: a kill at each stage, then one rerun ------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpus")
    make_corpus(directory, n_train=200)
    return directory


def own_args(corpus, out):
    return ["--source-lang", "src", "--target-lang", "tgt", "--out", out, "--train", corpus / "train",
            "--valid", corpus / "valid", "--test", corpus / "test", "--vocab-size", "18", "--workers", "1"]


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    """The files of an uninterrupted run, and the directory it ran in: sentencepiece models and
    fairseq's preprocess.log name their paths, so each killed run uses the same directory."""
    out = tmp_path_factory.mktemp("prepare") / "out"
    run("stk_nmt.data.own", *own_args(corpus, out))
    hashes = tree_hashes(out)
    shutil.rmtree(out)
    return out, hashes


@pytest.mark.parametrize("point", ["stage:raw", "stage:tok", "stage:spm", "child:fairseq_cli.preprocess",
                                   "stage:data-bin"])
def test_prepare_killed_at_any_stage_reruns_to_the_same_files(point, corpus, uninterrupted, tmp_path):
    out, expected = uninterrupted
    process = start("stk_nmt.data.own", *own_args(corpus, out), hold_at=point, hold_file=tmp_path / "hold")
    _, child = wait_for_hold(process, tmp_path / "hold")
    # A second prepare run into the same directory is refused while the first one runs.
    with pytest.raises(FolderInUse, match=f"{out} is in use by process {process.pid}"):
        from stk_nmt.data import own
        own.main(list(map(str, own_args(corpus, out))))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if child is not None:  # fairseq-preprocess dies with the command that started it
        assert wait_gone(child), f"fairseq-preprocess (pid {child}) outlived its parent"
    assert any(p.name.endswith(".stk-tmp") for p in out.iterdir())  # a stage was left half-done
    rerun = run("stk_nmt.data.own", *own_args(corpus, out))
    assert "removing the half-written" in rerun.stdout
    try:
        assert tree_hashes(out) == expected
    finally:
        shutil.rmtree(out)


# --- training: no orphan, one run per save dir, torn checkpoints ----------------------------------

TINY_TRAIN = [*TINY_ARCH, "--max-tokens", "200", "--lr", "5e-3", "--warmup-updates", "10", "--cpu",
              "--num-workers", "0", "--log-interval", "1"]


@pytest.fixture(scope="module")
def joined_bin(corpus):
    # The demo recipe shares all embeddings: that needs one dictionary for both languages.
    dest = corpus / "joined-bin"
    run("fairseq_cli.preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref",
        corpus / "train", "--validpref", corpus / "valid", "--testpref", corpus / "test", "--destdir", dest,
        "--workers", "1", "--joined-dictionary")
    return dest


def recipe_args(data, save_dir, epochs):
    return ["--recipe", "demo", "--data", data, "--save-dir", save_dir, "--criterion",
            "label_smoothed_cross_entropy", "--", *TINY_TRAIN, "--max-epoch", str(epochs)]


def train(data, save_dir, epochs):
    return run("stk_nmt.translation.recipes", *recipe_args(data, save_dir, epochs))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_no_fairseq_train_outlives_the_recipe(signum, joined_bin, tmp_path):
    save_dir = tmp_path / "ck"
    process = start("stk_nmt.translation.recipes", *recipe_args(joined_bin, save_dir, 1),
                    hold_at="child:fairseq_cli.train", hold_file=tmp_path / "hold")
    _, child = wait_for_hold(process, tmp_path / "hold")
    assert running(child)
    with pytest.raises(FolderInUse, match=f"{save_dir} is in use by process {process.pid}"):
        recipes.train("demo", joined_bin, save_dir, "label_smoothed_cross_entropy", extra_args=TINY_TRAIN)
    os.kill(process.pid, signum)
    assert process.wait(timeout=DEADLINE_S) != 0
    assert wait_gone(child), f"fairseq-train (pid {child}) outlived the recipe killed by {signum!r}"
    os.close(lock_folder(save_dir, "test", ".stk-train.lock"))  # the lock went with them


@pytest.fixture(scope="module")
def epoch_1(joined_bin, tmp_path_factory):
    """A save dir after one epoch; tests copy it."""
    save_dir = tmp_path_factory.mktemp("epoch-1") / "ck"
    train(joined_bin, save_dir, 1)
    return save_dir


def copy_of(save_dir, tmp_path):
    return Path(shutil.copytree(save_dir, tmp_path / "ck"))


@pytest.fixture(scope="module")
def two_epochs(joined_bin, epoch_1, tmp_path_factory):
    """Epoch 1, then a plain resume for epoch 2 (fairseq 0.12's resume is deterministic but not
    bit-identical to one run of two epochs, so this is the reference)."""
    save_dir = copy_of(epoch_1, tmp_path_factory.mktemp("two-epochs"))
    train(joined_bin, save_dir, 2)
    return load_model(save_dir / "checkpoint_last.pt")


def load_model(path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["model"], state["extra_state"]["train_iterator"]["epoch"]


def assert_same_model(a, b):
    assert a[1] == b[1] and set(a[0]) == set(b[0])
    for name in a[0]:
        assert torch.equal(a[0][name], b[0][name]), name


def test_torn_checkpoint_last_resumes_from_the_newest_readable(joined_bin, epoch_1, two_epochs, tmp_path):
    save_dir = copy_of(epoch_1, tmp_path)
    last = save_dir / "checkpoint_last.pt"
    size = last.stat().st_size
    with open(last, "r+b") as handle:  # what a kill during a plain copy leaves
        handle.truncate(size // 2)
    rerun = train(joined_bin, save_dir, 2)
    assert "checkpoint_last.pt is unreadable" in rerun.stdout
    assert f"resuming from {save_dir / 'checkpoint_best.pt'}, the newest readable checkpoint" in rerun.stdout
    assert (save_dir / "checkpoint_last.pt.unreadable").stat().st_size == size // 2
    assert_same_model(load_model(last), two_epochs)
    log = (save_dir / "train.log").read_text()
    assert log.count("| INFO | fairseq_cli.train | done training") == 2  # the resumed run appended


def test_kill_during_a_checkpoint_save_leaves_a_readable_checkpoint_last(joined_bin, epoch_1, two_epochs,
                                                                        tmp_path):
    save_dir = copy_of(epoch_1, tmp_path)
    after_epoch_1 = load_model(save_dir / "checkpoint_last.pt")
    # Epoch 2's checkpoint_best.pt is written; fairseq copies it to checkpoint_last.pt: kill then.
    process = start("stk_nmt.translation.recipes", *recipe_args(joined_bin, save_dir, 2),
                    hold_at="copy:checkpoint_last.pt", hold_file=tmp_path / "hold")
    fairseq_pid, _ = wait_for_hold(process, tmp_path / "hold")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert wait_gone(fairseq_pid)
    assert unreadable_reason(save_dir / "checkpoint_last.pt") is None
    assert_same_model(load_model(save_dir / "checkpoint_last.pt"), after_epoch_1)  # still whole
    assert list(save_dir.glob(".checkpoint_last.pt.*.tmp"))  # the copy the kill interrupted
    rerun = train(joined_bin, save_dir, 2)
    assert_same_model(load_model(save_dir / "checkpoint_last.pt"), two_epochs)
    # The rerun removed the killed copy's temporary (a whole checkpoint's size) before training.
    assert "a checkpoint temporary a killed run left behind" in rerun.stdout
    assert not [p.name for p in save_dir.iterdir() if p.name.endswith(".tmp")]
