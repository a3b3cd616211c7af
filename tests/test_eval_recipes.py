"""Training recipes (command lines) and checkpoint averaging."""

import pytest
import torch

from stk_nmt.translation import recipes
from stk_nmt.translation.checkpoints import average_checkpoints, last_checkpoints
from stk_nmt.translation.fairseq_run import USER_DIR


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
