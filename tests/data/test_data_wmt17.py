"""WMT17 en-de and zh-en preparation on miniature archives with the real names and SGML layout."""

import pytest
from sacremoses import MosesPunctNormalizer

from translation_archives import build_wmt_archives, write_tgz
from stk_nmt.data import wmt17


def run(archives, out, pair, *extra):
    return wmt17.main(["--pair", pair, "--out", str(out), "--archives-dir", str(archives),
                       "--vocab-size", "400", "--workers", "1", *extra])


@pytest.fixture(scope="module")
def en_de(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt-en-de")
    expected = build_wmt_archives(root / "archives", "en-de")
    return root, expected, run(root / "archives", root / "out", "en-de")


def test_en_de_uses_the_four_corpora_and_both_test_sets(en_de):
    root, expected, manifest = en_de
    out = root / "out"
    n_train = len(expected["train"])
    assert manifest["sizes_before_subwords"] == {"train": n_train, "valid": 6, "test": 6, "test1": 6}
    assert manifest["test_sets"] == {"test": "newstest2017", "test1": "newstest2016"}
    normalize = MosesPunctNormalizer(lang="de")
    # The four archives are concatenated in the recipe's order; German is punctuation-normalised.
    assert (out / "tok" / "train.de").read_text().splitlines() == \
        [normalize.normalize(t).strip() for _, t in expected["train"]]
    # References are the raw <seg> texts: newstest2017 is subset "test", newstest2016 "test1",
    # newstest2015 "valid" (no test set chooses checkpoint_best.pt).
    assert (out / "tok" / "ref" / "test.de").read_text().splitlines() == [t for _, t in expected["newstest2017"]]
    assert (out / "tok" / "ref" / "test1.de").read_text().splitlines() == [t for _, t in expected["newstest2016"]]
    assert (out / "tok" / "ref" / "valid.en").read_text().splitlines() == [s for s, _ in expected["newstest2015"]]
    for subset in ("train", "valid", "test", "test1"):
        assert (out / "data-bin" / f"{subset}.en-de.de.bin").stat().st_size > 0
    assert manifest["config"]["character_coverage"] == 1.0


def shared_sentences(out, manifest):
    """(subset, sentence) of every test subset sentence that is also in valid, either side."""
    ref = out / "tok" / "ref"
    langs = (manifest["config"]["source_lang"], manifest["config"]["target_lang"])
    valid = {line for lang in langs for line in (ref / f"valid.{lang}").read_text().splitlines()}
    return [(subset, line) for subset in manifest["test_sets"] for lang in langs
            for line in (ref / f"{subset}.{lang}").read_text().splitlines() if line in valid]


def test_valid_shares_no_sentence_with_any_test_subset(en_de, zh_en):
    for root, manifest in ((en_de[0], en_de[2]), zh_en):
        assert shared_sentences(root / "out", manifest) == []


@pytest.fixture(scope="module")
def zh_en(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt-zh-en")
    build_wmt_archives(root / "archives", "zh-en")
    return root, run(root / "archives", root / "out", "zh-en")


def test_zh_en_uses_chinese_settings(zh_en):
    tmp_path, manifest = zh_en
    expected = build_wmt_archives(tmp_path / "archives-again", "zh-en")
    assert manifest["config"]["character_coverage"] == 0.9995
    assert manifest["sizes_before_subwords"] == {"train": len(expected["train"]), "valid": 6, "test": 6}
    # Chinese is neither punctuation-normalised nor tokenised: full-width stops stay.
    assert (tmp_path / "out" / "tok" / "train.zh").read_text().splitlines() == [s for s, _ in expected["train"]]
    assert (tmp_path / "out" / "tok" / "ref" / "test.en").read_text().splitlines() == \
        [t for _, t in expected["newstest2017"]]
    assert (tmp_path / "out" / "data-bin" / "test.zh-en.zh.idx").is_file()


def test_sgm_extraction_matches_sacrebleu():
    text = ('<refset setid="newstest2017" srclang="any" trglang="de">\n<doc docid="a">\n'
            '<seg id="1">  Ein   Satz &amp; mehr. </seg>\n<p>\n<seg id="2">Zwei</seg>\n</doc>\n')
    assert wmt17.sgm_segments(text) == ["Ein Satz &amp; mehr.", "Zwei"]


def test_errors_pair_missing_archive_misaligned_corpus(tmp_path):
    with pytest.raises(ValueError, match="de-fr"):
        wmt17.main(["--pair", "de-fr", "--out", str(tmp_path / "x"), "--archives-dir", str(tmp_path)])
    archives = tmp_path / "archives"
    build_wmt_archives(archives, "en-de", n_per_corpus=10, n_eval=2)
    (archives / "rapid2016.tgz").unlink()
    with pytest.raises(FileNotFoundError, match="rapid2016.tgz"):
        run(archives, tmp_path / "a", "en-de")
    write_tgz(archives / "rapid2016.tgz", {"rapid2016.de-en.de": "a\nb\nc\n", "rapid2016.de-en.en": "a\nb\n"})
    with pytest.raises(ValueError, match="line counts differ"):
        run(archives, tmp_path / "b", "en-de")


def test_un_corpus_must_be_given_by_hand(tmp_path):
    # No --archives-dir: the UN corpus has no direct download URL, the error says what to do.
    with pytest.raises(FileNotFoundError, match="UNv1.0.en-zh.tar.gz.*by hand"):
        wmt17.obtain(wmt17.ARCHIVES["un"], None, tmp_path)
