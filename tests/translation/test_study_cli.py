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


RERUN = ["rerun", "--preset", "catalogs", "--data-root", "data", "--work-root", "work", "--records", "records",
         "--pair", "fr", "--system", "baseline", "--seed", "4"]


def test_a_rerun_trains_one_recorded_run_again_in_its_own_folder(tmp_path, monkeypatch):
    # The grid's settings for that pair and seed, its own run folder beside the grid's runs, its record
    # in RECORDS/<pair>/reruns/ (the rerun's training itself is run_one's, tested with the grid).
    from stk_nmt.translation.study import grid
    from stk_nmt.translation.study import records as study_records

    records = tmp_path / "records"
    study_records.write_corpus_record(records / "fr", {"name": "fr"}, type("C", (), {
        "config": {}, "manifest": {"config": {"corpus": "c"}}, "root": tmp_path, "references": lambda s, x: []})())
    argv = [a.replace("records", str(records)).replace("work", str(tmp_path / "work")).replace(
        "data", str(tmp_path / "data")) if a in ("records", "work", "data") else a for a in RERUN]
    with pytest.raises(ValueError, match="--seed 4.*no recorded run"):
        cli.main(argv)  # nothing recorded for baseline seed 4 yet
    run_dir = tmp_path / "old" / "runs" / "baseline" / "seed4"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text('{"hypotheses": "hyp"}')
    (run_dir / "hyp").write_text("x\n")
    study_records.pack_run(records / "fr", "baseline", 4, run_dir)

    seen = []

    def fake_run_one(config, system, seed, corpus, run_dir, key=None):
        seen.append((config["seeds"], config["max_update"], system.spec, seed, run_dir))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "hyp").write_text("y\n")
        (run_dir / "result.json").write_text('{"hypotheses": "hyp"}')
        return {"bleu": 1.0, "chrf": 2.0, "length_ratio": 1.0, "seconds": 3.0}

    monkeypatch.setattr(grid, "run_one", fake_run_one)
    corpus = type("Corpus", (), {"config": {}})()
    monkeypatch.setattr(grid, "PreparedCorpus", type("P", (), {"load": staticmethod(lambda data: corpus)}))
    monkeypatch.setattr(grid, "corpus_hashes", lambda corpus: {"train": {}, "decode": {}, "analysis": {}})
    monkeypatch.setattr(grid, "check_same_corpus", lambda records, corpus: None)
    (tmp_path / "data" / "catalogs.en-fr" / "data-bin").mkdir(parents=True)
    archive = cli.main(argv)
    assert seen == [([4], 800, "baseline", 4, tmp_path / "work" / "study-fr" / "reruns" / "baseline__seed4__r1")]
    assert archive == records / "fr" / "reruns" / "baseline__seed4__r1.tar.xz" and archive.is_file()
    cli.main(argv)  # a second rerun gets the next number
    assert seen[-1][-1].name == "baseline__seed4__r2"


def test_a_rerun_names_a_system_the_preset_does_not_have(tmp_path):
    with pytest.raises(ValueError, match="--system 'stk:0.5'"):
        cli.main([*RERUN[:-4], "--system", "stk:0.5", "--seed", "4"])
