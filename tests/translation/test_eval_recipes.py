"""Training recipes (command lines), checkpoint averaging, the training log, evaluation checks."""

import shlex
import sys

import pytest
import torch

from stk_nmt.data.prepared import PreparedCorpus
from stk_nmt.translation import evaluate, fairseq_run, recipes
from stk_nmt.translation.averaging import average_checkpoints, last_checkpoints
from stk_nmt.translation.fairseq_run import USER_DIR

from prepared_fakes import fake_prepared as prepared


@pytest.fixture
def data_bin(tmp_path):
    (tmp_path / "data-bin").mkdir()
    (tmp_path / "data-bin" / "dict.de.txt").write_text("a 1\n")
    return tmp_path


def flag(command, name):
    return command[command.index(name) + 1]


def test_stk_gets_the_paper_settings_and_the_plugin(data_bin):
    command = recipes.train_command("iwslt14", data_bin, data_bin / "ck", "stk")
    assert command[0] == str(data_bin / "data-bin")
    assert flag(command, "--user-dir") == USER_DIR
    assert flag(command, "--arch") == "transformer_iwslt_de_en"
    assert (flag(command, "--criterion"), flag(command, "--stk-k-ratio"), flag(command, "--stk-delta")) == \
        ("stk", "0.96", "0.01")
    assert flag(command, "--label-smoothing") == "0.1"
    baseline = recipes.train_command("iwslt14", data_bin, data_bin / "ck", "label_smoothed_cross_entropy")
    assert "--stk-k-ratio" not in baseline and flag(baseline, "--label-smoothing") == "0.1"
    hinge = recipes.train_command("iwslt14", data_bin, data_bin / "ck", "topk_hinge")
    assert flag(hinge, "--stk-k-ratio") == "0.96" and "--label-smoothing" not in hinge
    other = recipes.train_command("wmt17", data_bin, data_bin / "ck", "cross_entropy", extra_args=["--fp16"])
    assert "--label-smoothing" not in other and other[-1] == "--fp16"
    assert flag(other, "--arch") == "transformer_vaswani_wmt_en_de_big"


def test_dry_run_prints_the_command(data_bin, capsys):
    recipes.main(["--recipe", "demo", "--data", str(data_bin), "--save-dir", str(data_bin / "ck"),
                  "--criterion", "stk", "--stk-k-ratio", "0.9", "--dry-run", "--", "--max-epoch", "3"])
    printed = capsys.readouterr().out.split()
    assert printed[1:3] == ["-m", "fairseq_cli.train"]
    assert flag(printed, "--stk-k-ratio") == "0.9" and printed[-2:] == ["--max-epoch", "3"]


def test_dry_run_without_double_dash_and_a_stray_word(data_bin, capsys):
    own = ["--recipe", "demo", "--data", str(data_bin), "--save-dir", str(data_bin / "ck"), "--dry-run"]
    recipes.main(own)
    alone = capsys.readouterr().out.split()
    recipes.main([*own, "--"])
    assert capsys.readouterr().out.split() == alone
    recipes.main([*own, "--", "--criterion", "cross_entropy"])  # after --, even our own flag names pass on
    assert capsys.readouterr().out.split() == alone + ["--criterion", "cross_entropy"]
    with pytest.raises(SystemExit):
        recipes.main([*own, "stray"])
    assert "unrecognized arguments: stray" in capsys.readouterr().err


def test_unknown_recipe_or_missing_data(tmp_path):
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipes.train_command("iwslt15", tmp_path, tmp_path, "stk")
    with pytest.raises(FileNotFoundError, match="no fairseq data-bin"):
        recipes.train_command("demo", tmp_path / "nothing", tmp_path, "stk")


def test_average_of_the_last_checkpoints(tmp_path):
    for epoch in (1, 2, 3, 10):
        torch.save({"model": {"w": torch.full((2,), float(epoch)), "steps": torch.tensor([epoch])},
                    "extra_state": {"epoch": epoch}}, tmp_path / f"checkpoint{epoch}.pt")
    torch.save({"model": {}}, tmp_path / "checkpoint_best.pt")
    paths = last_checkpoints(tmp_path, 3)
    assert [p.name for p in paths] == ["checkpoint10.pt", "checkpoint3.pt", "checkpoint2.pt"]
    average_checkpoints(paths, tmp_path / "avg.pt")
    averaged = torch.load(tmp_path / "avg.pt", weights_only=False)
    assert torch.allclose(averaged["model"]["w"], torch.full((2,), 5.0))
    assert averaged["model"]["w"].dtype == torch.float32
    assert averaged["extra_state"] == {"epoch": 10}  # the rest comes from the newest
    assert averaged["model"]["steps"].tolist() == [10]  # integer buffers are not averaged
    # Update-numbered checkpoints (--save-interval-updates) take precedence.
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "checkpoint_4_1000.pt")
    assert [p.name for p in last_checkpoints(tmp_path, 1)] == ["checkpoint_4_1000.pt"]
    with pytest.raises(ValueError, match="asked to average 2"):
        last_checkpoints(tmp_path, 2)


def test_dry_run_command_can_be_pasted_into_a_shell(data_bin, capsys):
    recipes.main(["--recipe", "demo", "--data", str(data_bin), "--save-dir", str(data_bin / "ck"), "--dry-run"])
    printed = shlex.split(capsys.readouterr().out)
    assert flag(printed, "--adam-betas") == "(0.9, 0.98)"


def fake_fairseq(monkeypatch, script):
    """fairseq_command runs a small Python script instead of a fairseq CLI."""
    monkeypatch.setattr(fairseq_run, "fairseq_command", lambda tool, *args: [sys.executable, "-c", script, *args])


def test_train_log_streams_and_a_resumed_run_appends(data_bin, monkeypatch):
    save_dir = data_bin / "ck"
    save_dir.mkdir()
    log = save_dir / "train.log"
    fake_fairseq(monkeypatch, "import sys; print('epoch', sys.argv[-1], flush=True)")
    seen = []

    def show(line):  # called as each line comes, while the child still runs
        seen.append(log.read_text())
        return False

    fairseq_run.run_fairseq("train", ["--max-epoch", "2"], log_path=log, stream=True, show=show, append_log=True)
    assert seen == ["epoch 2\n"]  # the line was in train.log before the child ended
    recipes.train("demo", data_bin, save_dir, "stk", extra_args=["--max-epoch", "4"])
    assert log.read_text() == "epoch 2\nepoch 4\n"


def test_hypothesis_count_hint_does_not_blame_the_batch_multiple():
    with pytest.raises(ValueError, match=r"missing sentence ids \[1\]") as error:
        evaluate.ordered_hypotheses({0: "a", 2: "c"}, 3)
    assert "--required-batch-size-multiple" not in str(error.value)
    assert "--max-source-positions" in str(error.value)


def test_evaluate_refuses_a_checkpoint_trained_with_other_dictionaries(tmp_path):
    from stk_nmt.translation.training_record import record_training_data

    trained_on = prepared(tmp_path / "a", "hallo 5\nwelt 3\n")
    other = prepared(tmp_path / "b", "welt 5\nhallo 3\n")  # same size, other words
    save_dir = tmp_path / "ck"
    record_training_data(save_dir, trained_on / "data-bin")  # as recipes.train does
    checkpoint = save_dir / "checkpoint_best.pt"
    torch.save({"model": {}}, checkpoint)
    pattern = (rf"--checkpoint {checkpoint} was trained with the dictionaries of {trained_on / 'data-bin'}.*"
               rf"differ from those of --data {other} .*dict.de.txt, dict.en.txt")
    with pytest.raises(ValueError, match=pattern):
        evaluate.main(["--data", str(other), "--checkpoint", str(checkpoint)])
    # Without the record, the data-bin named in the checkpoint's configuration is compared.
    (save_dir / "training-data.json").unlink()
    torch.save({"cfg": {"task": {"data": str(trained_on / "data-bin")}}, "model": {}}, checkpoint)
    with pytest.raises(ValueError, match=f"task.data of {checkpoint}"):
        evaluate.main(["--data", str(other), "--checkpoint", str(checkpoint)])
    evaluate.check_dictionaries(PreparedCorpus.load(trained_on), checkpoint)  # its own data passes


def test_the_language_pair_comes_from_the_data_bin_not_from_fairseqs_guess(data_bin):
    bin_dir = data_bin / "data-bin"
    assert fairseq_run.language_args(bin_dir) == []  # no training index: fairseq's own inference
    assert "--source-lang" not in recipes.train_command("demo", data_bin, data_bin / "ck", "stk")
    # fairseq would infer ("stk", "stage") from the pipeline's stage record when listed first.
    for name in (".stk-stage.json", "train.de-en.de.idx", "train.de-en.en.idx", "valid.de-en.de.idx",
                 "train.de-en.de.bin"):
        (bin_dir / name).write_text("")
    assert fairseq_run.language_args(bin_dir) == ["--source-lang", "de", "--target-lang", "en"]
    command = recipes.train_command("demo", data_bin, data_bin / "ck", "stk")
    assert (flag(command, "--source-lang"), flag(command, "--target-lang")) == ("de", "en")
    (bin_dir / "train.en-de.en.idx").write_text("")  # two directions: not ours to choose
    assert fairseq_run.language_args(bin_dir) == []
