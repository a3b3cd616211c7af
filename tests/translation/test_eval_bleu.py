"""Evaluation: hypothesis extraction and ordering, the count check, detokenisation, sacreBLEU."""

import json
import math

import pytest
import sacrebleu

from stk_nmt.data.prepared import PreparedCorpus
from stk_nmt.translation.evaluate import (
    compare,
    extract_hypotheses,
    ordered_hypotheses,
    paired_bootstrap,
    score,
)

GENERATE_OUTPUT = """\
S-2\tdas ist gut .
T-2\tthat is good .
H-2\t-0.31\tthat is good .
D-2\t-0.31\tthat is good .
P-2\t-0.1 -0.2 -0.3 -0.4 -0.5
S-0\thallo welt
T-0\thello world
H-0\t-0.12\thello world
D-0\t-0.12\thello world
S-1\twie geht 's ?
H-1\t-0.50\thow are you ?
2026-11-23 | INFO | fairseq_cli.generate | Translated 3 sentences
Generate test with beam=5: BLEU4 = 10.00
"""


def test_hypotheses_come_back_in_sentence_order():
    hypotheses = extract_hypotheses(GENERATE_OUTPUT)
    assert ordered_hypotheses(hypotheses, 3) == ["hello world", "how are you ?", "that is good ."]


def test_count_check_catches_a_dropped_sentence():
    dropped = "\n".join(line for line in GENERATE_OUTPUT.splitlines() if not line.startswith("H-1\t"))
    with pytest.raises(ValueError, match=r"hypothesis count 2 != reference count 3; missing sentence ids \[1\]"):
        ordered_hypotheses(extract_hypotheses(dropped), 3)
    with pytest.raises(ValueError, match="reference count 4"):
        ordered_hypotheses(extract_hypotheses(GENERATE_OUTPUT), 4)


def test_bleu_is_sacrebleus_own_score_and_the_hand_computed_one():
    # Unigram 5/6, bigram 3/5, trigram 2/4, 4-gram 1/3, equal lengths: BLEU = (1/12) ** (1/4).
    result = score(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert result.bleu == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-9)
    hypotheses = ["The cat sat on the mat.", "A Dog barked loudly!", "It rained all day long."]
    references = ["The cat sat on a mat.", "A dog barked loudly!", "It was raining all day."]
    for lowercase in (False, True):
        result = score(hypotheses, references, lowercase=lowercase)
        assert result.bleu == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references], lowercase=lowercase).score)
        assert result.chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score if not lowercase
                                            else sacrebleu.metrics.CHRF(lowercase=True).corpus_score(hypotheses, [references]).score)
        assert result.bleu_signature.startswith("nrefs:1|case:" + ("lc" if lowercase else "mixed"))
        assert "tok:13a" in result.bleu_signature and "version:" in result.bleu_signature
    assert score(hypotheses, references, lowercase=True).bleu > score(hypotheses, references).bleu
    chinese = score(["我喜欢猫。"], ["我喜欢狗。"], target_lang="zh")
    assert "tok:zh" in chinese.bleu_signature
    assert chinese.bleu == pytest.approx(sacrebleu.corpus_bleu(["我喜欢猫。"], [["我喜欢狗。"]], tokenize="zh").score)


def test_score_refuses_mismatched_counts():
    with pytest.raises(ValueError, match="hypothesis count 1 != reference count 2"):
        score(["a"], ["a", "b"])


def test_moses_corpora_are_detokenised_before_scoring(tmp_path):
    manifest = {"config": {"tokenizer": "moses", "target_lang": "en", "lowercase": True},
                "test_sets": {"test": "t"}, "references": "tok/ref", "data_bin": "data-bin"}
    (tmp_path / "prepared.json").write_text(json.dumps(manifest))
    corpus = PreparedCorpus.load(tmp_path)
    assert corpus.postprocess(["hello , world &apos;s &quot; end &quot; ."]) == ['hello, world\'s "end".']
    with pytest.raises(ValueError, match="subset must be one of"):
        corpus.references("test7")
    with pytest.raises(FileNotFoundError, match="prepared.json"):
        PreparedCorpus.load(tmp_path / "elsewhere")


def test_paired_bootstrap_finds_the_clearly_better_system():
    references = [f"sentence number {i} is about the cat and the dog" for i in range(60)]
    good = list(references)
    poor = [f"sentence {i} about a cat" for i in range(60)]
    signatures, table = paired_bootstrap({"baseline": poor, "better": good}, references, n_samples=200)
    (base_name, base_score, _, _, base_p), (name, better_score, _, _, p_value) = table["BLEU"]
    assert (base_name, name) == ("baseline", "better") and base_p is None
    assert base_score == pytest.approx(sacrebleu.corpus_bleu(poor, [references]).score)
    assert better_score == pytest.approx(100.0)
    assert p_value < 0.05
    assert "bs:200" in signatures["BLEU"]
    scores = {"baseline": score(poor, references), "better": score(good, references)}
    text = compare({"baseline": poor, "better": good}, scores, references, False, "en", n_samples=200)
    assert "100.00" in text and "baseline" in text and "BLEU signature: nrefs:1|bs:200" in text
    assert not math.isnan(scores["baseline"].bleu)


def test_format_table_keeps_the_formatted_cells_and_aligns_the_columns():
    from stk_nmt.translation.evaluate import format_table

    text = format_table([("baseline", "27.50", "baseline"), ("stk:0.9", "28.01", "0.0100")], ("system", "BLEU", "p(BLEU)"))
    lines = text.splitlines()
    assert lines[0].split() == ["system", "BLEU", "p(BLEU)"]
    assert [line.split() for line in lines[2:]] == [["baseline", "27.50", "baseline"], ["stk:0.9", "28.01", "0.0100"]]
    assert len({len(line) for line in lines}) == 1  # every row padded to the same width
    assert lines[2].index("27.50") == lines[3].index("28.01")  # right-aligned scores line up
