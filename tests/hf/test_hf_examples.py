"""The two Hugging Face examples at their tiny size, and the package boundary (optional extra)."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
import stk_nmt.hf  # noqa: E402,F401  (before peft: hides an unloadable torchaudio from transformers)

pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[2]
HAS_FR_CATALOGS = any(Path("/usr/share/locale/fr/LC_MESSAGES").glob("*.mo"))


def _check_rows(rows, names):
    assert [row["run"] for row in rows] == names
    assert len({row["tokens"] for row in rows}) == 1  # every run is measured on the same held-out tokens
    for row in rows:
        for key in ("loss", "nll", "tail_nll", "ppl"):
            assert math.isfinite(row[key]), (row["run"], key)
        assert row["tail_nll"] > row["nll"]  # the worst 4% of tokens lie above the mean
        assert row["ppl"] == pytest.approx(math.exp(row["nll"]))
        assert ("lam" in row) == ("ST_k" in row["run"])
        if "lam" in row:
            assert math.isfinite(row["lam"]) and row["lam"] > 0


@pytest.mark.skipif(not HAS_FR_CATALOGS, reason="no French gettext catalogs under /usr/share/locale")
def test_seq2seq_example_on_the_catalogs(tmp_path, capsys):
    from stk_nmt.hf import demo_seq2seq

    rows = demo_seq2seq.main(["--size", "tiny", "--corpus", "catalogs", "--out", str(tmp_path), "--no-progress"])
    _check_rows(rows, ["baseline", "ST_k"])
    for row in rows:
        assert 0 <= row["chrf"] <= 100 and 0 <= row["bleu"] <= 100
    printed = capsys.readouterr().out
    assert "gettext catalogs en->fr" in printed
    assert "| baseline" in printed and "| ST_k" in printed and "valid NLL, worst 4%" in printed


def test_causal_lm_example_full_and_lora_then_a_rerun_reuses_the_runs(tmp_path, capsys):
    from stk_nmt.hf import demo_causal_lm

    argv = ["--size", "tiny", "--corpus", "synthetic", "--out", str(tmp_path), "--no-progress"]
    rows = demo_causal_lm.main(argv)
    _check_rows(rows, ["full baseline", "full ST_k", "LoRA baseline", "LoRA ST_k"])
    full, lora = rows[0]["trained"], rows[2]["trained"]
    assert rows[1]["trained"] == full and rows[3]["trained"] == lora and 0 < lora < full / 10
    assert "| LoRA ST_k" in capsys.readouterr().out
    assert demo_causal_lm.main(argv) == rows  # from the saved results, nothing trained again
    assert "done before" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["hf_seq2seq", "hf_causal_lm"])
def test_example_scripts_are_thin_callers(name):
    source = (ROOT / "examples" / f"{name}.py").read_text()
    module = name.replace("hf_", "demo_")
    assert f"from stk_nmt.hf.{module} import main" in source and "sys.path" not in source


def test_importing_stk_nmt_hf_without_transformers_names_the_extra():
    code = "import sys; sys.modules['transformers'] = None; import stk_nmt.hf"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode != 0
    # MissingExtraError, an ImportError naming the extra and its install command
    assert "MissingExtraError" in done.stderr and "pip install 'stk-nmt[hf]'" in done.stderr


def test_the_core_does_not_import_stk_nmt_hf():
    code = "import sys, stk_nmt, stk_nmt.core; print('stk_nmt.hf' in sys.modules, 'transformers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
