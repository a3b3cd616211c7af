"""A study keeps a finished run only while everything that shaped it still holds, takes a lock on
its folder, and never records a system fairseq-train would refuse.

One study (ST_k at k/n = 0.9, one seed, 4 updates, checkpoints kept) is run once on a tiny corpus;
each test works on a copy of it. Paths are relative to the copy, so that a copy's corpus can be
re-prepared in place with the same command.
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest

fairseq = pytest.importorskip("fairseq")

from fairseq_tiny import TINY_ARCH, make_corpus  # noqa: E402
from stk_nmt.data import own  # noqa: E402
from stk_nmt.data.io import read_lines  # noqa: E402
from stk_nmt.files import FolderInUse, lock_folder  # noqa: E402
from stk_nmt.translation import study  # noqa: E402
from stk_nmt.translation.study.config import claim  # noqa: E402
from stk_nmt.translation.evaluate import score  # noqa: E402

pytestmark = pytest.mark.slow

FAIRSEQ = " ".join(TINY_ARCH + ["--max-tokens", "200", "--warmup-updates", "5", "--lr", "5e-3", "--cpu",
                                "--num-workers", "0"])
RUN = os.path.join("work", "runs", "stk-0.9", "seed1")
PREPARE = ["--source-lang", "src", "--target-lang", "tgt", "--out", "data", "--train", "raw/train",
           "--valid", "raw/valid", "--test", "raw/test", "--vocab-size", "18", "--workers", "1"]


@contextlib.contextmanager
def inside(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def study_args(*extra, systems=("stk:0.9",)):
    return ["run", "--data", "data", "--work", "work", "--systems", *systems, "--seeds", "1", "--max-update", "4",
            "--beam", "1", "--log-interval", "1", "--bootstrap-samples", "20", "--analysis-sentences", "20",
            "--fairseq-args", FAIRSEQ, "--keep-checkpoints", *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("study-integrity")
    make_corpus(root / "raw", n_train=200)
    with inside(root):
        own.main(PREPARE)
        study.main(study_args())
    return root


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished study, as the current directory."""
    root = Path(shutil.copytree(finished, tmp_path / "study"))
    with inside(root):
        yield root


def train_logs():
    return sorted(p.name for p in (Path.cwd() / RUN).glob("train.*.log"))


def result():
    return json.loads((Path.cwd() / RUN / "result.json").read_text())


# --- defect 2: a second `study run` on the same folder trained the same runs again -----------------

def test_a_second_study_run_on_the_same_folder_is_refused(copy):
    config = (copy / "work" / "study-config.json").read_bytes()
    held = lock_folder(copy / "work", "study run")  # as a running `study run` holds it
    try:
        with pytest.raises(FolderInUse, match=f"work is in use by process {os.getpid()}"):
            study.main(study_args("--max-update", "4", systems=("stk:0.9", "baseline")))
    finally:
        os.close(held)
    assert (copy / "work" / "study-config.json").read_bytes() == config
    assert not (copy / "work" / "runs" / "baseline").exists()


# --- defect 4: a corpus re-prepared in place kept the runs trained on the old one ------------------

def test_a_corpus_reprepared_in_place_retrains_its_runs(copy, capsys):
    before = read_lines(copy / RUN / "hyp.test.test.tgt")
    assert any("v" in line for line in before)  # the old targets' words
    for split in ("train", "valid", "test"):  # the same files, other target words
        path = copy / "raw" / f"{split}.tgt"
        path.write_text(path.read_text().replace("v", "u"))
    own.main(PREPARE)
    capsys.readouterr()
    summary = study.main(study_args())
    out = capsys.readouterr().out
    assert f"{RUN}: trained with other settings (data (" in out and "retraining" in out
    assert train_logs() == ["train.1.log"]  # trained anew, not resumed
    run = result()
    assert run["final_updates"] == 4
    hypotheses = read_lines(copy / RUN / "hyp.test.test.tgt")
    assert not any("v" in line for line in hypotheses)  # decoded by a model of the new corpus
    references = read_lines(copy / "data" / "tok" / "ref" / "test.tgt")
    assert references[0].startswith("u")
    assert summary["runs"][0]["bleu"] == pytest.approx(score(hypotheses, references).bleu)


# --- defect 5: changed --generate-args / --analysis-sentences kept the old results ------------------

def test_changed_analysis_or_generate_arguments_redo_what_they_affect(copy, capsys):
    first = result()
    capsys.readouterr()
    study.main(study_args("--analysis-sentences", "10"))
    out = capsys.readouterr().out
    assert "analysis again with the kept checkpoint" in out and "retraining" not in out
    again = result()
    assert again["tokens_below_lam"]["counts"]["all_eos"] == 10  # one end of sentence per analysed sentence
    assert first["tokens_below_lam"]["counts"]["all_eos"] == 20
    assert (again["bleu"], again["hypotheses"]) == (first["bleu"], first["hypotheses"])  # not decoded again
    assert train_logs() == ["train.1.log"]

    hypotheses = read_lines(copy / RUN / "hyp.test.test.tgt")
    assert max(len(h.split()) for h in hypotheses) > 1
    study.main(study_args("--analysis-sentences", "10", "--generate-args", "--max-len-a 0 --max-len-b 1"))
    out = capsys.readouterr().out
    assert "generate_args [] -> ['--max-len-a', '0', '--max-len-b', '1']" in out and "decode again" in out
    hypotheses = read_lines(copy / RUN / "hyp.test.test.tgt")
    assert max(len(h.split()) for h in hypotheses) <= 1  # one sentencepiece token at most
    references = read_lines(copy / "data" / "tok" / "ref" / "test.tgt")
    assert result()["bleu"] == pytest.approx(score(hypotheses, references).bleu)
    assert train_logs() == ["train.1.log"]



# --- defect 8: a system with a bad flag stayed in the grid ------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("stk:0.9,--stk-delta=-1", "--stk-delta must be a finite number > 0, got --stk-delta -1.0"),
    ("stk:0.8,--stk-detla=1", "stk has no flag '--stk-detla'"),
])
def test_a_system_with_a_bad_flag_is_refused_before_it_is_recorded(copy, spec, message):
    config = (copy / "work" / "study-config.json").read_bytes()
    with pytest.raises(ValueError, match=rf"--systems entry '{spec}': {message}"):
        study.main(study_args(systems=("stk:0.9", spec)))
    assert (copy / "work" / "study-config.json").read_bytes() == config


def test_a_bad_system_an_older_version_recorded_is_dropped_from_the_grid(copy, capsys):
    path = copy / "work" / "study-config.json"
    config = json.loads(path.read_text())
    config["systems"].append("stk:0.9,--stk-delta=-1")  # what the older version wrote before failing
    path.write_text(json.dumps(config))
    kept = (copy / RUN / "result.json").read_bytes()
    summary = study.main(study_args())
    assert "dropped 'stk:0.9,--stk-delta=-1' from the grid" in capsys.readouterr().out
    assert json.loads(path.read_text())["systems"] == ["stk:0.9"] == list(summary["systems"])
    assert (copy / RUN / "result.json").read_bytes() == kept  # the finished run is kept


# --- which part of a run a changed key redoes (no training: a run folder as a study leaves it) -------

def key(data="d1", generate=(), sentences=20):
    return {"train": {"data": {"train.bin": data}, "seed": 1}, "decode": {"generate_args": list(generate)},
            "analysis": {"sentences": sentences}}


def finished_run(run_dir, checkpoint):
    from stk_nmt.translation.study.integrity import record_training_key

    run_dir.mkdir(parents=True)
    record_training_key(run_dir, key())
    (run_dir / "train.done").write_text("")
    if checkpoint:
        (run_dir / "checkpoint_last.pt").write_bytes(b"weights")
    (run_dir / "result.json").write_text(json.dumps({"bleu": 1.0, "key": key()}))


@pytest.mark.parametrize("checkpoint", [True, False])
def test_a_changed_key_redoes_only_the_parts_it_reaches(tmp_path, checkpoint):
    from stk_nmt.translation.study.integrity import align_run

    said = []
    cases = [(key(), set()), (key(sentences=10), {"analysis"}), (key(generate=["--fp16"]), {"decode"}),
             (key(generate=["--fp16"], sentences=10), {"analysis", "decode"}), (key(data="d2"), None)]
    for i, (new, redo) in enumerate(cases):
        run_dir = tmp_path / f"run{i}"
        finished_run(run_dir, checkpoint)
        previous, parts = align_run(run_dir, new, analysed=True, log=said.append)
        if redo == set():
            assert (previous["bleu"], parts) == (1.0, set())
        elif redo is not None and checkpoint:  # decoded or analysed again with the kept checkpoint
            assert (previous["bleu"], parts) == (1.0, redo) and (run_dir / "checkpoint_last.pt").is_file()
        else:  # the data changed, or there is no checkpoint to decode with: trained again from scratch
            assert (previous, parts) == (None, {"train", "decode", "analysis"}) and not run_dir.exists()
    # The baseline has no analysis: a changed analysis setting leaves it as it is.
    finished_run(tmp_path / "baseline", checkpoint)
    assert align_run(tmp_path / "baseline", key(sentences=10), analysed=False, log=said.append)[1] == set()
    assert any("trained with other settings (data (train.bin)): retraining" in line for line in said)
    assert any(("its checkpoint was deleted" in line) != checkpoint for line in said if "decode" in line)


# --- item 6: a study that failed before any run finished is corrected by running it again ------------

def test_a_study_that_failed_before_any_run_finished_takes_corrected_settings(tmp_path):
    work = tmp_path / "work"
    config = {"data": "data", "recipe": "demo", "max_update": 4, "fairseq_args": ["--max-tokens", "200"],
              "stk_args": [], "beam": 1, "label_smoothing": 0.1, "systems": ["stk:0.9"], "seeds": [1]}
    claim(work, dict(config, fairseq_args=["--max-tokens", "-5"]))  # what the failed attempt recorded
    partial = work / "runs" / "stk-0.9" / "seed1"
    partial.mkdir(parents=True)
    (partial / "train.1.log").write_text("error: --max-tokens -5\n")
    claim(work, dict(config))  # the corrected command
    assert json.loads((work / "study-config.json").read_text())["fairseq_args"] == ["--max-tokens", "200"]
    # Once a run has finished, its settings are what the other runs must be comparable with.
    (partial / "result.json").write_text("{}")
    with pytest.raises(ValueError, match=r"fairseq_args=\['--max-tokens', '200'\], this one has .*use another --work"):
        claim(work, dict(config, fairseq_args=["--max-tokens", "300"]))
