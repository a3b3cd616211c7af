"""End to end with the real fairseq CLIs on a tiny corpus built by the test."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

fairseq = pytest.importorskip("fairseq")
import stk_nmt  # noqa: E402,F401  (registers the criteria and the checkpoint safe globals)

from fairseq_tiny import USER_DIR, env, run, train  # noqa: E402

pytestmark = pytest.mark.slow

REPO = str(Path(USER_DIR).parent)


def run_python(code: str) -> str:
    """Runs code in a fresh interpreter (nothing imported yet); returns its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout


def test_core_and_the_package_never_import_fairseq():
    out = run_python("import sys, stk_nmt.core; core = 'fairseq' in sys.modules; import stk_nmt; "
                     "print(core, 'fairseq' in sys.modules, 'torch' in sys.modules)")
    assert out.split() == ["False", "False", "True"]


BUILD_STK = """
from fairseq.criterions import CRITERION_REGISTRY, build_criterion
from fairseq.data import Dictionary
from omegaconf import OmegaConf

class Task:
    target_dictionary = Dictionary()

cfg = OmegaConf.create({"_name": "stk", "stk_k": 3, "stk_delta": 0.05, "label_smoothing": 0.2,
                        "sentence_avg": False, "max_tokens": 1000, "max_tokens_valid": 1000})
criterion = build_criterion(cfg, Task())
import stk_nmt.criterions  # only now: importing it would register the criteria itself
print(type(criterion) is stk_nmt.criterions.STkCriterion, CRITERION_REGISTRY["stk"] is stk_nmt.criterions.STkCriterion,
      criterion.k, criterion.eps, sorted(k for k in CRITERION_REGISTRY if "stk" in k or "hinge" in k))
"""
REGISTERED = ["True", "True", "3", "0.2", "['imbalanced_topk_hinge',", "'stk',", "'stk_label_smoothed_cross_entropy',",
              "'topk_hinge']"]


@pytest.mark.parametrize("first", ["import stk_nmt", "import stk_nmt.core", "import fairseq; import stk_nmt"])
def test_criteria_are_registered_whichever_package_is_imported_first(first):
    # stk_nmt before fairseq: registered when fairseq's import finishes (before, registration depended
    # on fairseq being imported first). The build goes through fairseq's registry, as fairseq-train does.
    out = run_python(f"{first}\nimport fairseq\n{BUILD_STK}")
    assert out.split() == REGISTERED


def test_user_dir_import_after_stk_nmt_core_registers_the_criteria():
    # What fairseq-train --user-dir does, in a process that used stk_nmt.core before fairseq was loaded:
    # fairseq finds stk_nmt in sys.modules and skips its import.
    out = run_python("import argparse, stk_nmt.core\nfrom fairseq import utils\n"
                     f"utils.import_user_module(argparse.Namespace(user_dir={USER_DIR!r}))\n{BUILD_STK}")
    assert out.split() == REGISTERED


def read_hypotheses(output: str, n: int):
    """H- lines sorted by sentence id, hypothesis text only."""
    hyps = {}
    for line in output.splitlines():
        if line.startswith("H-"):
            ident, _score, text = line.split("\t", 2)
            hyps[int(ident[2:])] = text
    assert sorted(hyps) == list(range(n)), f"expected {n} hypotheses, got ids {sorted(hyps)}"
    return [hyps[i] for i in range(n)]


STK = ["--criterion", "stk", "--label-smoothing", "0.1"]


@pytest.fixture(scope="module")
def two_epochs(tiny_data_bin, tmp_path_factory):
    """fairseq-train --criterion stk for two epochs: (save dir, train_inner records)."""
    save = tmp_path_factory.mktemp("stk") / "ckpt"
    logs, _ = train(tiny_data_bin, save, *STK, "--max-epoch", "2")
    return save, logs


def test_train_two_epochs_resume_third_generate_and_score(tiny_data_bin, two_epochs):
    import sacrebleu

    save, logs = two_epochs
    # lam starts at the first batch's k-th largest token loss (log interval 1: one batch per record).
    assert logs[0]["lam"] == pytest.approx(logs[0]["kth_loss"], abs=1e-4)
    assert logs[0]["loss"] > 0 and logs[0]["nll_loss"] > 0 and logs[0]["ppl"] > 1

    # The checkpoint loads with the safe weights-only loader once the plugin's allow-list is in place
    # (called here explicitly: in this process stk_nmt may have been imported before fairseq).
    from stk_nmt.fairseq_compat import allow_fairseq_checkpoints

    allow_fairseq_checkpoints()
    state = torch.load(save / "checkpoint_last.pt", weights_only=True)
    saved_lam = float(state["criterion"]["aggregate.lam"])
    assert bool(state["criterion"]["aggregate.lam_initialized"])
    assert state["extra_state"]["train_iterator"]["epoch"] == 3  # the next epoch to run

    # Resume for a third epoch: lam continues from its saved value.
    logs3, _ = train(tiny_data_bin, save, *STK, "--max-epoch", "3")
    assert logs3[0]["epoch"] == 3 and logs3[0]["num_updates"] == logs[-1]["num_updates"] + 1
    assert logs3[0]["lam"] == pytest.approx(saved_lam, abs=1e-4)

    # Generate on the checkpoint; score the hypotheses against the raw references with sacrebleu.
    gen = run("fairseq_cli.generate", tiny_data_bin, "--user-dir", USER_DIR, "--path", save / "checkpoint_last.pt",
              "--cpu", "--beam", "2", "--required-batch-size-multiple", "1", "--max-tokens", "2000")
    refs = (tiny_data_bin.parent / "test.tgt").read_text().splitlines()
    hyps = read_hypotheses(gen.stdout, len(refs))
    bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none")
    # fairseq's own scorer works on the same whitespace tokens (no BPE here): the two must agree.
    fairseq_bleu = float(re.search(r"BLEU4 = ([0-9.]+)", gen.stdout + gen.stderr).group(1))
    assert bleu.score == pytest.approx(fairseq_bleu, abs=0.01)
    assert bleu.score > 1.0, f"the tiny model should have learnt something: {bleu}"


def test_checkpoint_needs_the_allow_list_or_the_documented_flag(tiny_data_bin, two_epochs, tmp_path):
    ckpt = two_epochs[0] / "checkpoint_best.pt"
    # Plain torch >= 2.6 refuses a fairseq checkpoint ...
    plain = subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(ckpt)!r})"],
                           capture_output=True, text=True, env=env())
    assert plain.returncode != 0 and "argparse.Namespace" in plain.stderr
    # ... and so does plain fairseq-generate without --user-dir (it calls torch.load the same way),
    # unless TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, the documented alternative.
    args = [tiny_data_bin, "--path", ckpt, "--cpu", "--beam", "1", "--required-batch-size-multiple", "1"]
    ok = run("fairseq_cli.generate", *args, extra_env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    assert len(re.findall(r"^H-", ok.stdout, flags=re.M)) == 40


def test_warm_start_from_label_smoothed_cross_entropy(tiny_data_bin, tmp_path):
    base = tmp_path / "lsce"
    train(tiny_data_bin, base, "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
          "--max-epoch", "1")
    ckpt = base / "checkpoint_last.pt"
    # The criterion class differs, so --restore-file needs --reset-optimizer; lam starts fresh.
    for flags in (["--restore-file", ckpt, "--reset-optimizer"], ["--finetune-from-model", ckpt]):
        save = tmp_path / flags[0].strip("-")
        logs, out = train(tiny_data_bin, save, "--criterion", "stk", "--label-smoothing", "0.1", *flags,
                          "--max-update", "3" if flags[0] == "--finetune-from-model" else "18")
        assert "lam starts fresh" in out
        # A warm model: its first loss is well below the untrained one (about log2(V) = 4 bits).
        assert logs[0]["nll_loss"] < 3.5
        assert logs[0]["lam"] == pytest.approx(logs[0]["kth_loss"], abs=1e-4)
