"""The study command line: what goes to fairseq-train, without running a study."""

import pytest

from stk_nmt.translation.study import cli
from stk_nmt.translation.study.systems import parse_system

BASE = ["run", "--data", "prepared", "--work", "work", "--max-update", "5", "--fairseq-args", "--cpu --num-workers 0"]


@pytest.fixture
def configs(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # main sets a default; restored afterwards
    seen = []
    monkeypatch.setattr(cli, "run_study", lambda config, **kw: seen.append(config) or config)
    return seen


def test_arguments_after_double_dash_go_to_fairseq_train(configs):
    config = cli.main([*BASE, "--seeds", "1", "2", "--", "--fp16", "--max-epoch", "3", "--seed", "9"])
    # Everything after -- is fairseq's, even flags the study itself has (--seed).
    assert config["fairseq_args"] == ["--cpu", "--num-workers", "0", "--fp16", "--max-epoch", "3", "--seed", "9"]
    assert config["seeds"] == [1, 2]
    assert config["command"].endswith("--seeds 1 2 -- --fp16 --max-epoch 3 --seed 9")


def test_without_double_dash_or_with_nothing_after_it(configs):
    assert cli.main(BASE)["fairseq_args"] == ["--cpu", "--num-workers", "0"]
    assert cli.main([*BASE, "--"])["fairseq_args"] == ["--cpu", "--num-workers", "0"]


def test_a_stray_word_before_double_dash_is_still_an_error(configs, capsys):
    with pytest.raises(SystemExit):
        cli.main([*BASE, "stray"])
    assert "unrecognized arguments: stray" in capsys.readouterr().err
    assert configs == []


def test_a_single_flag_as_the_value_of_an_args_option(configs):
    # argparse alone refuses "--fairseq-args --cpu" (a lone value that looks like an option).
    base = ["run", "--data", "prepared", "--work", "work", "--max-update", "5"]
    config = cli.main([*base, "--fairseq-args", "--cpu", "--stk-args", "--stk-delta=0.1", "--generate-args", "--fp16",
                       "--", "--fp16"])
    assert config["fairseq_args"] == ["--cpu", "--fp16"]
    assert config["stk_args"] == ["--stk-delta=0.1"] and config["generate_args"] == ["--fp16"]
    assert cli.main([*base, "--fairseq-args=--cpu"])["fairseq_args"] == ["--cpu"]
    assert cli.main([*base, "--seeds", "4", "--", "--fairseq-args", "--cpu"])["fairseq_args"] == ["--fairseq-args", "--cpu"]


def test_a_preset_sets_recipe_budget_systems_and_seeds(configs):
    base = ["run", "--data", "prepared", "--work", "work"]
    config = cli.main([*base, "--preset", "catalogs"])
    assert (config["recipe"], config["max_update"], config["preset"]) == ("study", 800, "catalogs")
    assert config["seeds"] == [1, 2, 3, 4, 5]
    assert config["systems"] == ["baseline", "stk:0.96", "atk:0.96", "stk:0.96,--stk-delta=0.1",
                                 "stk:0.96,--stk-always-average=eos"]
    # Every system parses to the flags it names; the EOS system passes the criterion's flag.
    eos = parse_system(config["systems"][-1])
    assert eos.criterion_args(0.1, [])[-2:] == ["--stk-always-average", "eos"]
    # Given values win over the preset's.
    config = cli.main([*base, "--preset", "catalogs", "--seeds", "7", "--max-update", "10", "--systems", "baseline"])
    assert (config["seeds"], config["max_update"], config["systems"]) == ([7], 10, ["baseline"])


def test_run_needs_a_budget_without_a_preset(configs, capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--data", "prepared", "--work", "work"])
    assert "--max-update" in capsys.readouterr().err and configs == []


def test_the_grid_keeps_german_out(tmp_path):
    with pytest.raises(ValueError, match="German"):
        cli.main(["grid", "--preset", "catalogs", "--data-root", str(tmp_path), "--work-root", str(tmp_path),
                  "--records", str(tmp_path), "--pairs", "fr", "de"])
