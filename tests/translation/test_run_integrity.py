"""Recipes and evaluation never reuse what no longer matches: resumes with other data or flags, the
recipe's defaults against the user's flags, torn checkpoints, a killed run's temporaries.

fairseq-train is replaced by a small script that saves a readable checkpoint and records its
arguments, so each test takes a fraction of a second.
"""

import json
import sys
import zipfile

import pytest
import torch

from stk_nmt.data.prepared import PreparedCorpus
from stk_nmt.translation import evaluate, fairseq_run, recipes
from stk_nmt.translation.averaging import average_checkpoints, last_checkpoints
from stk_nmt.translation.training_record import TRAINING_DATA_RECORD

from prepared_fakes import fake_prepared

# Saves SAVE_DIR/checkpoint_last.pt (a zip, as torch.save writes) and appends its arguments to
# SAVE_DIR/calls.jsonl.
FAKE_TRAIN = """
import json, sys, zipfile
args = sys.argv[1:]
save_dir = args[args.index('--save-dir') + 1]
with zipfile.ZipFile(save_dir + '/checkpoint_last.pt', 'w') as archive:
    archive.writestr('data.pkl', 'weights')
with open(save_dir + '/calls.jsonl', 'a') as log:
    log.write(json.dumps(args) + '\\n')
"""


@pytest.fixture
def fake_train(monkeypatch):
    monkeypatch.setattr(fairseq_run, "fairseq_command",
                        lambda tool, *args: [sys.executable, "-c", FAKE_TRAIN, *args])


def prepared(root, dictionary, train_text="a b\n"):
    """A prepared corpus with one binarised training split (its bytes are what the record hashes)."""
    return fake_prepared(root, dictionary, train_text)


def calls(save_dir):
    return [json.loads(line) for line in (save_dir / "calls.jsonl").read_text().splitlines()]


def train(data, save_dir, *extra, **kwargs):
    return recipes.train("demo", data, save_dir, "stk", extra_args=["--max-epoch", "1", *extra], **kwargs)


# --- defect 3: a resume with other data rewrote the training record ----------------------------------

def test_a_resume_with_other_dictionaries_is_refused_and_keeps_the_record(tmp_path, fake_train):
    a = prepared(tmp_path / "a", "hallo 5\nwelt 3\n")
    b = prepared(tmp_path / "b", "welt 5\nhallo 3\n")  # same size, other words
    save_dir = tmp_path / "ck"
    train(a, save_dir)
    record = (save_dir / TRAINING_DATA_RECORD).read_bytes()
    refused = (rf"--save-dir {save_dir} holds checkpoints trained with the dictionaries of {a / 'data-bin'}.*"
               rf"dict.de.txt, dict.en.txt.*use another --save-dir")
    with pytest.raises(ValueError, match=refused):
        train(b, save_dir)
    with pytest.raises(ValueError, match=refused):
        train(b, save_dir, resume_with_changes=True)  # no flag makes other dictionaries fit
    assert (save_dir / TRAINING_DATA_RECORD).read_bytes() == record
    assert len(calls(save_dir)) == 1  # fairseq-train did not run again
    # So evaluate still refuses the checkpoint on B, as before the attempt.
    with pytest.raises(ValueError, match="differ from those of --data"):
        evaluate.check_dictionaries(PreparedCorpus.load(b), save_dir / "checkpoint_last.pt")


def test_a_resume_with_other_data_or_flags_needs_resume_with_changes(tmp_path, fake_train):
    a = prepared(tmp_path / "a", "hallo 5\nwelt 3\n")
    same_words = prepared(tmp_path / "c", "hallo 5\nwelt 3\n", train_text="b a\n")  # other training data
    save_dir = tmp_path / "ck"
    train(a, save_dir, "--lr", "0.001")
    record = json.loads((save_dir / TRAINING_DATA_RECORD).read_text())
    with pytest.raises(ValueError, match=r"the data differs \(train.de-en.de.bin, train.de-en.en.bin of .*"
                                         r"pass --resume-with-changes"):
        train(same_words, save_dir, "--lr", "0.001")
    with pytest.raises(ValueError, match=r"the training flags differ \(--lr 0.001 -> 0.002\)"):
        train(a, save_dir, "--lr", "0.002")
    train(a, save_dir, "--lr", "0.001", "--max-epoch", "3")  # a longer budget is no change
    assert len(calls(save_dir)) == 2
    train(same_words, save_dir, "--lr", "0.001", resume_with_changes=True)
    assert len(calls(save_dir)) == 3
    continued = json.loads((save_dir / TRAINING_DATA_RECORD).read_text())
    assert {k: continued[k] for k in record} == record  # what the checkpoints were first trained on
    assert [c["data_bin"] for c in continued["continued"]] == [str((same_words / "data-bin").resolve())]


def test_a_run_that_never_saved_a_checkpoint_does_not_block_other_data(tmp_path, fake_train, monkeypatch):
    a = prepared(tmp_path / "a", "hallo 5\nwelt 3\n")
    b = prepared(tmp_path / "b", "welt 5\nhallo 3\n")
    save_dir = tmp_path / "ck"
    monkeypatch.setattr(fairseq_run, "fairseq_command", lambda tool, *args: [sys.executable, "-c", "exit(3)"])
    with pytest.raises(RuntimeError, match="exit code 3"):
        train(a, save_dir)
    monkeypatch.undo()
    monkeypatch.setattr(fairseq_run, "fairseq_command", lambda tool, *args: [sys.executable, "-c", FAKE_TRAIN, *args])
    train(b, save_dir)  # nothing was trained on A: B starts from scratch and is recorded
    assert json.loads((save_dir / TRAINING_DATA_RECORD).read_text())["data_bin"] == str((b / "data-bin").resolve())


# --- defect 7: recipes added --stk-k-ratio next to the user's --stk-k ----------------------------------

def test_a_count_k_after_the_separator_replaces_the_recipes_ratio(tmp_path, capsys):
    data = prepared(tmp_path / "a", "hallo 5\n")
    recipes.main(["--recipe", "demo", "--data", str(data), "--save-dir", str(tmp_path / "ck"), "--criterion", "stk",
                  "--dry-run", "--", "--stk-k", "50"])
    command = capsys.readouterr().out.split()
    assert "--stk-k-ratio" not in command
    assert command[command.index("--stk-k") + 1] == "50"
    assert command[command.index("--stk-delta") + 1] == "0.01"  # the recipe's other defaults stay
    # The criterion's own flag check (what fairseq-train runs) accepts the command.
    from stk_nmt.translation.study.integrity import check_system

    check_system("recipe", command[command.index("--criterion"):command.index("--save-dir")], command)
    # A ratio after the separator replaces the recipe's ratio instead of following it.
    recipes.main(["--recipe", "demo", "--data", str(data), "--save-dir", str(tmp_path / "ck"), "--criterion", "stk",
                  "--dry-run", "--", "--stk-k-ratio", "0.5"])
    command = capsys.readouterr().out.split()
    assert [command[i + 1] for i, word in enumerate(command) if word == "--stk-k-ratio"] == ["0.5"]


# --- defect 10: torn checkpoints named, with what to do --------------------------------------------------

def tear(path):
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # what a kill during a plain copy leaves
        handle.truncate(size // 2)


def test_averaging_names_a_torn_interval_checkpoint(tmp_path):
    for update in (100, 200, 300):
        torch.save({"model": {"w": torch.full((4,), float(update))}}, tmp_path / f"checkpoint_1_{update}.pt")
    tear(tmp_path / "checkpoint_1_200.pt")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'checkpoint_1_200.pt'} is unreadable .*"
                                         r"average the remaining ones \(a smaller --average-last\)"):
        average_checkpoints(last_checkpoints(tmp_path, 2), tmp_path / "checkpoint_avg2.pt")
    assert not (tmp_path / "checkpoint_avg2.pt").exists()


@pytest.mark.parametrize("name, remedy", [("checkpoint_best.pt", "evaluate checkpoint_last.pt"),
                                          ("checkpoint_avg5.pt", "average again")])
def test_evaluate_names_a_torn_checkpoint(tmp_path, name, remedy):
    from stk_nmt.translation.training_record import record_training_data

    data = prepared(tmp_path / "a", "hallo 5\n")
    save_dir = tmp_path / "ck"
    record_training_data(save_dir, data / "data-bin")
    checkpoint = save_dir / name
    torch.save({"model": {"w": torch.zeros(64)}}, checkpoint)
    tear(checkpoint)
    with pytest.raises(ValueError, match=rf"--checkpoint {checkpoint} is unreadable \(.*\).*: {remedy}"):
        evaluate.main(["--data", str(data), "--checkpoint", str(checkpoint)])


# --- defect 15: a killed checkpoint copy's temporary stayed behind ---------------------------------------

def test_a_killed_copys_temporaries_are_removed_at_the_next_start(tmp_path, fake_train, capsys):
    data = prepared(tmp_path / "a", "hallo 5\n")
    save_dir = tmp_path / "ck"
    save_dir.mkdir()
    # What a kill -9 leaves: the atomic copy's temporary and fairseq's own atomic-save temporary.
    stale = [save_dir / ".checkpoint_last.pt.k2j3h4.tmp", save_dir / "checkpoint_best.pt.tmp"]
    for path in stale:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("data.pkl", "a whole checkpoint")
    train(data, save_dir)
    assert not any(path.exists() for path in stale)
    assert "removed .checkpoint_last.pt.k2j3h4.tmp" in capsys.readouterr().out
    assert (save_dir / "checkpoint_last.pt").is_file()
