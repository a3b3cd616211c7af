"""The whole road on a tiny default corpus: prepare, train with stk, generate, score, compare."""

import json

import pytest
import sacrebleu

from stk_nmt.data.default_corpus import prepare_default
from stk_nmt.translation import evaluate, recipes


@pytest.mark.slow
def test_prepare_train_stk_generate_and_score(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny model: threads only contend with each other
    data = tmp_path / "data"
    manifest = prepare_default(data, seed=3, n_train=300, n_valid=20, n_test=21, vocab_size=300)
    assert manifest["sizes_binarized"] == {"train": 300, "valid": 20, "test": 21}
    save_dir = tmp_path / "ckpt"
    best = recipes.train("demo", data, save_dir, "stk", seed=1,
                         extra_args=["--max-epoch", "2", "--max-tokens", "1024"])
    log = (save_dir / "train.log").read_text()
    assert "lam" in log and "done training" in log  # the stk criterion ran and logged lam
    assert "| train |" in capsys.readouterr().out  # progress lines were shown

    out = tmp_path / "eval"
    # 21 test sentences with batch size 8: the last batch (5) would be dropped without
    # --required-batch-size-multiple 1; the count check would then fail.
    summary = evaluate.main(["--data", str(data), "--checkpoint", str(best), "--compare",
                             str(save_dir / "checkpoint_last.pt"), "--names", "best", "last",
                             "--batch-size", "8", "--max-len-a", "1", "--max-len-b", "5",
                             "--bootstrap-samples", "50", "--output-dir", str(out)])
    references = (data / "tok" / "ref" / "test.tgt").read_text(encoding="utf-8").splitlines()
    assert len(references) == 21
    for name in ("best", "last"):
        hypotheses = (out / f"hyp.test.{name}.tgt").read_text(encoding="utf-8").splitlines()
        assert len(hypotheses) == 21
        assert summary[name]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
        assert summary[name]["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert json.loads((out / "scores.test.json").read_text()) == summary
    table = (out / "table.test.txt").read_text()
    assert "p(BLEU)" in table and "BLEU signature: nrefs:1|bs:50" in table
