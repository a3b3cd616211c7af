"""The shell recipes in scripts/ on miniature data: prepare -> train -> evaluate, the WMT17 prepare, the demo.

Each script is run the way a user runs it (bash, from another working directory), with PYTHON set
to this interpreter; one test checks the default interpreter (the project's .venv).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from translation_archives import build_iwslt_archive, build_wmt_archives
from fairseq_tiny import TINY_ARCH

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))


def bash(script, *args, cwd, extra_env=None, check=True, python=sys.executable):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "OUT")}
    env.update({"OMP_NUM_THREADS": "1", **({"PYTHON": python} if python else {}), **(extra_env or {})})
    proc = subprocess.run(["bash", str(REPO / "scripts" / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_parses(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_array_expansion_that_bash_3_2_rejects_under_set_u(script):
    # bash < 4.4 with set -u: "${arr[@]}" of an empty array is an "unbound variable" error;
    # ${arr[@]+"${arr[@]}"} expands to nothing instead.
    text = re.sub(r'\$\{(\w+)\[@\]\+"\$\{\1\[@\]\}"\}', "", script.read_text())
    assert not re.search(r"\$\{\w+\[@\]\}", text), f"{script.name}: guard array expansions for bash 3.2"


def test_scripts_run_the_projects_environment(tmp_path):
    probe = '. "$1/scripts/_python.sh"; echo "$PYTHON"'
    run = lambda env: subprocess.run(["bash", "-c", probe, "probe", str(REPO)], cwd=tmp_path, capture_output=True,
                                     text=True, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env})
    venv = REPO / ".venv" / "bin" / "python"
    if venv.exists():  # no PYTHON: the project's .venv, whatever the working directory
        assert run({}).stdout.strip() == str(venv)
    assert run({"PYTHON": sys.executable}).stdout.strip() == sys.executable
    broken = run({"PYTHON": str(tmp_path / "no-python")})
    assert broken.returncode == 1 and "cannot import stk_nmt" in broken.stderr and "make setup" in broken.stderr


def test_evaluate_without_a_compare_checkpoint_passes_no_empty_argument(tmp_path):
    # The empty compare array must expand to nothing (bash 3.2 safe form): evaluate then reports
    # the missing corpus, not an unexpected '' argument.
    proc = bash("evaluate_bleu.sh", tmp_path / "nothing", tmp_path / "ck.pt", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "prepared.json" in proc.stderr and "unrecognized" not in proc.stderr


@pytest.mark.slow
def test_iwslt14_prepare_train_evaluate_through_the_scripts(tmp_path):
    archive = tmp_path / "de-en.tgz"
    expected = build_iwslt_archive(archive)
    data = tmp_path / "iwslt14.de-en"
    bash("prepare_iwslt14.sh", "--archive", archive, "--vocab-size", "300", "--workers", "1", cwd=tmp_path,
         extra_env={"OUT": str(data)})
    manifest = json.loads((data / "prepared.json").read_text())
    assert manifest["sizes_binarized"] == expected["sizes"]

    # The IWSLT14 recipe with the tiny model's flags after --: fairseq takes the last value of a flag.
    save = tmp_path / "ckpt"
    proc = bash("train.sh", "iwslt14", data, save, "stk", "--stk-k-ratio", "0.9", "--",
                *TINY_ARCH, "--max-epoch", "1", "--max-tokens", "1024", "--cpu", "--num-workers", "0", cwd=tmp_path)
    assert "criterion stk" in proc.stdout and (save / "checkpoint_best.pt").is_file()
    log = (save / "train.log").read_text()
    assert "'stk_k_ratio': 0.9" in log and "lam" in log  # the stk criterion ran with the script's flag

    out = tmp_path / "eval"
    bash("evaluate_bleu.sh", data, save / "checkpoint_best.pt", save / "checkpoint_last.pt", "--names", "best", "last",
         "--batch-size", "8", "--max-len-a", "1", "--max-len-b", "5", "--bootstrap-samples", "20",
         "--output-dir", out, cwd=tmp_path)
    references = (data / "tok" / "ref" / "test.en").read_text(encoding="utf-8").splitlines()
    assert references == expected["test_en"]
    scores = json.loads((out / "scores.test.json").read_text())
    for name in ("best", "last"):
        hypotheses = (out / f"hyp.test.{name}.en").read_text(encoding="utf-8").splitlines()
        assert len(hypotheses) == len(references)
        assert scores[name]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert "p(BLEU)" in (out / "table.test.txt").read_text()


@pytest.mark.slow
def test_wmt17_prepare_and_the_train_command_through_the_scripts(tmp_path):
    expected = build_wmt_archives(tmp_path / "archives", "en-de")
    bash("prepare_wmt17.sh", "en-de", "--archives-dir", tmp_path / "archives", "--vocab-size", "400", "--workers", "1",
         cwd=tmp_path)  # OUT unset: the default data/wmt17.en-de under the working directory
    data = tmp_path / "data" / "wmt17.en-de"
    manifest = json.loads((data / "prepared.json").read_text())
    assert manifest["sizes_before_subwords"]["train"] == len(expected["train"])
    assert manifest["test_sets"] == {"test": "newstest2017", "test1": "newstest2016"}
    printed = bash("train.sh", "wmt17", data, tmp_path / "ck", "stk", "--dry-run", "--", "--fp16", cwd=tmp_path).stdout.split()
    assert printed[printed.index("--arch") + 1] == "transformer_vaswani_wmt_en_de_big"
    assert printed[printed.index("--criterion") + 1] == "stk" and printed[-1] == "--fp16"
    assert printed[0] == sys.executable  # the interpreter the scripts were given


@pytest.mark.slow
def test_demo_script_on_a_tiny_corpus(tmp_path):
    proc = bash("demo.sh", "--work", tmp_path / "demo", "--epochs", "1", "--train-size", "300", "--vocab-size", "200",
                "--criteria", "stk", cwd=tmp_path)
    table = (tmp_path / "demo" / "results" / "table.txt").read_text()
    assert "1 epochs, seed 1" in table and "BLEU signature" in table and table.strip() in proc.stdout
    row = next(line.split() for line in table.splitlines() if line.startswith("stk"))
    hypotheses = (tmp_path / "demo" / "results" / "hyp.test.stk.tgt").read_text(encoding="utf-8").splitlines()
    references = (tmp_path / "demo" / "data" / "tok" / "ref" / "test.tgt").read_text(encoding="utf-8").splitlines()
    assert float(row[1]) == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.005)
