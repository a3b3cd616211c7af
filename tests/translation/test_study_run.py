"""The study command end to end on a tiny corpus: 2 systems x 2 seeds, killed after a run, resumed, its
records packed and the page re-rendered from them alone. The ST_k system always averages EOS tokens."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

fairseq = pytest.importorskip("fairseq")

from fairseq_tiny import TINY_ARCH, env, make_corpus  # noqa: E402
from stk_nmt.data import own  # noqa: E402
from stk_nmt.data.io import read_lines  # noqa: E402
from stk_nmt.translation.study import stats as study_stats  # noqa: E402
from stk_nmt.host import describe_code  # noqa: E402

pytestmark = pytest.mark.slow

STK = "stk:0.9,--stk-always-average=eos"
FAIRSEQ = " ".join(TINY_ARCH + ["--max-tokens", "200", "--warmup-updates", "5", "--lr", "5e-3", "--cpu",
                                "--num-workers", "0"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    make_corpus(root / "raw", n_train=300)
    own.main(["--source-lang", "src", "--target-lang", "tgt", "--out", str(root / "data"),
              "--train", str(root / "raw/train"), "--valid", str(root / "raw/valid"),
              "--test", str(root / "raw/test"), "--vocab-size", "18", "--workers", "1"])
    return root


def study_args(root, *extra):
    return ["run", "--data", str(root / "data"), "--work", str(root / "work"), "--systems", "baseline", STK,
            "--seeds", "1", "2", "--max-update", "6", "--beam", "1", "--log-interval", "1",
            "--bootstrap-samples", "20", "--analysis-sentences", "20", "--fairseq-args", FAIRSEQ, *extra]


def test_killed_study_resumes_and_never_retrains(prepared):
    root = prepared
    work = root / "work"
    first = work / "runs" / "baseline" / "seed1"
    # Start the study in its own process group and kill it (fairseq children included) as soon as
    # the first run has recorded its completion.
    process = subprocess.Popen([sys.executable, "-m", "stk_nmt.translation.study", *study_args(root)],
                               env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        while not (first / "result.json").is_file():
            assert process.poll() is None, "the study ended before its first run finished"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (work / "study.json").exists()
    recorded = (first / "result.json").read_bytes()
    from stk_nmt.translation import study

    # The runs finished so far can be reported, marked partial.
    partial = study.main(["report", "--work", str(work)])
    assert partial["planned_runs"] == 4 and 1 <= len(partial["runs"]) < 4
    assert "In progress: " in (work / "report.md").read_text()
    # Resume in-process with the checkpoints kept, to check lam independently below.

    records = root / "records"
    result = study.main(study_args(root, "--keep-checkpoints", "--records", str(records)))
    assert (first / "result.json").read_bytes() == recorded  # the finished run was not redone
    assert [p.name for p in first.glob("train.*.log")] == ["train.1.log"]
    assert len(result["runs"]) == 4
    assert {(r["system"], r["seed"]) for r in result["runs"]} == {
        (s, k) for s in ("baseline", STK) for k in (1, 2)}
    # Every finished run (the one made before the kill too) has its record.
    assert sorted(p.name for p in (records / "runs").iterdir()) == [
        "baseline__seed1.tar.xz", "baseline__seed2.tar.xz",
        "stk-0.9_--stk-always-average=eos__seed1.tar.xz", "stk-0.9_--stk-always-average=eos__seed2.tar.xz"]
    assert all(r["final_updates"] == 6 for r in result["runs"])
    assert all(r["code"] == describe_code() for r in result["runs"])  # the package source the grid ran

    # Per system mean and std over seeds, from the run records.
    for spec, entry in result["systems"].items():
        bleus = [r["bleu"] for r in result["runs"] if r["system"] == spec]
        assert entry["bleu"]["mean"] == pytest.approx(np.mean(bleus))
        assert entry["bleu"]["std"] == pytest.approx(np.std(bleus, ddof=1))
    # The test across seeds and sentences, recomputed from the hypothesis files on disk.
    refs = read_lines(root / "data" / "tok" / "ref" / "test.tgt")
    hyps = {(r["system"], r["seed"]): read_lines(work / r["run_dir"] / r["hypotheses"]) for r in result["runs"]}
    again = study_stats.seed_sentence_bootstrap([hyps[(STK, s)] for s in (1, 2)],
                                                [hyps[("baseline", s)] for s in (1, 2)], refs, "BLEU", n_samples=20)
    assert result["systems"][STK]["test_BLEU"]["p_value"] == pytest.approx(again.p_value)
    assert set(result["systems"][STK]["per_seed_bootstrap_p"]) == {1, 2}
    sampling = study_stats.sentence_sampling_se([hyps[(STK, s)] for s in (1, 2)],
                                                [hyps[("baseline", s)] for s in (1, 2)], refs, "BLEU", n_samples=20)
    assert result["systems"][STK]["sentence_sampling_se"]["BLEU"] == pytest.approx(sampling)

    # Tokens below lam: the lam of the saved criterion state, and consistent counts.
    stk_run = next(r for r in result["runs"] if r["system"] == STK and r["seed"] == 2)
    below = stk_run["tokens_below_lam"]
    state = torch.load(work / stk_run["run_dir"] / "checkpoint_last.pt", weights_only=False)
    assert below["lam"] == pytest.approx(float(state["criterion"]["aggregate.lam"].reshape(-1)[0]))
    counts = below["counts"]
    assert below["below_lam_fraction"] == pytest.approx(counts["below"] / counts["all"])
    assert counts["all_eos"] == 20  # one end-of-sentence per analysed sentence
    assert all(r["tokens_below_lam"] is None for r in result["runs"] if r["system"] == "baseline")
    # lam and the k-th largest loss were parsed from the training log, one record per update.
    inner = stk_run["log"]["train_inner"]
    assert [r["num_updates"] for r in inner] == [1, 2, 3, 4, 5, 6] and all("lam" in r and "kth_loss" in r for r in inner)

    # Outputs: JSON, markdown table, figures.
    saved = json.loads((work / "study.json").read_text())
    assert len(saved["runs"]) == 4 and saved["signatures"]["BLEU"].startswith("nrefs:1")
    report = (work / "report.md").read_text()
    assert "In progress" not in report
    assert "| stk k/n=0.9" in report and "t-test p" in report and "Which target tokens" in report
    # The verdict's test: the paired t-test over the seeds' corpus-level differences.
    by_run = {(r["system"], r["seed"]): r["bleu"] for r in result["runs"]}
    seed_test = result["systems"][STK]["seed_test"]["BLEU"]
    assert seed_test["differences"] == pytest.approx([by_run[(STK, s)] - by_run[("baseline", s)] for s in (1, 2)])
    assert seed_test["holm_p"] is not None and seed_test["family_size"] == 2  # BLEU and chrF of one system
    for name in ("score_vs_k.png", "lam_vs_kth.png", "loss_curves.png"):
        assert (work / "img" / name).read_bytes()[:4] == b"\x89PNG"

    # A second study configuration in the same directory is refused; a page is composed.
    with pytest.raises(ValueError, match="max_update=6, this one has max_update=7"):
        study.main(study_args(root)[:-2] + ["--max-update", "7"])
    page = study.main(["page", "--studies", str(work), "--out", str(root / "docs" / "study.md")])
    assert "## Where the study stands" in page and (root / "docs" / "img" / "study-work-score_vs_k.png").is_file()
    # The same page from the committed records alone (no work folder, no prepared data).
    from_records = study.main(["page", "--records", str(records), "--out", str(root / "docs2" / "study.md")])
    def body(text):  # the page command itself differs (--studies / --records)
        return [line for line in text.splitlines() if not line.startswith("python -m stk_nmt.translation.study page")]

    assert body(from_records) == body(page)
