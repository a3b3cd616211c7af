"""IWSLT14 preparation on a miniature de-en.tgz with the real file names and XML layout."""

import json
import os
import tarfile

import pytest
from sacremoses import MosesTokenizer

from translation_archives import build_iwslt_archive
from stk_nmt.data import iwslt14, pipeline
from stk_nmt.data.pipeline import MANIFEST_FILE


def moses_lower(lines, lang):
    tokenizer = MosesTokenizer(lang=lang)
    return [tokenizer.tokenize(line, escape=True, return_str=True).lower() for line in lines]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("iwslt")
    archive = root / "de-en.tgz"
    expected = build_iwslt_archive(archive)
    out = root / "iwslt14.de-en"
    manifest = iwslt14.main(["--out", str(out), "--archive", str(archive), "--vocab-size", "300",
                             "--workers", "1"])
    return archive, out, expected, manifest


def test_split_sizes_follow_the_recipe(prepared):
    _, out, expected, manifest = prepared
    assert manifest["sizes_before_subwords"] == expected["sizes"]
    assert manifest["sizes_binarized"] == expected["sizes"]
    assert json.loads((out / MANIFEST_FILE).read_text())["sizes_before_subwords"] == expected["sizes"]


def test_valid_is_every_23rd_cleaned_pair_tokenised_and_lowercased(prepared):
    _, out, expected, _ = prepared
    kept_de = expected["kept_train_de"]
    every_23rd = [line for n, line in enumerate(kept_de, 1) if n % 23 == 0]
    rest = [line for n, line in enumerate(kept_de, 1) if n % 23 != 0]
    assert (out / "tok" / "valid.de").read_text().splitlines() == moses_lower(every_23rd, "de")
    assert (out / "tok" / "train.de").read_text().splitlines() == moses_lower(rest, "de")
    # References keep the raw (cased, untokenised) text of the same lines.
    assert (out / "tok" / "ref" / "valid.de").read_text().splitlines() == every_23rd
    train_en = (out / "tok" / "train.en").read_text().splitlines()
    assert "title of talk 0" in train_en  # <title> tags stripped, the line kept
    assert not any("<" in line for line in train_en)


def test_test_set_is_the_five_xml_files_in_order(prepared):
    _, out, expected, _ = prepared
    assert (out / "tok" / "ref" / "test.en").read_text().splitlines() == expected["test_en"]
    assert (out / "tok" / "test.de").read_text().splitlines() == moses_lower(expected["test_de"], "de")


def test_binarised_data_loads_in_fairseq(prepared):
    from fairseq.data import Dictionary, data_utils

    _, out, expected, _ = prepared
    dictionary = Dictionary.load(str(out / "data-bin" / "dict.en.txt"))
    assert (out / "data-bin" / "dict.de.txt").read_text() == (out / "data-bin" / "dict.en.txt").read_text()
    for split, size in expected["sizes"].items():
        dataset = data_utils.load_indexed_dataset(str(out / "data-bin" / f"{split}.de-en.en"), dictionary)
        assert len(dataset) == size
    first_test = dictionary.string(dataset[0]).replace(" ", "").replace("\u2581", " ").strip()
    assert first_test == moses_lower(expected["test_en"][:1], "en")[0]


def test_rerun_skips_finished_stages_and_rebuilds_a_half_written_one(prepared, capsys):
    archive, out, expected, _ = prepared
    note = out / "my-notes.txt"  # a user's file inside the output directory survives
    note.write_text("keep me")
    spm_mtime = os.stat(out / "spm" / "spm.model").st_mtime_ns
    os.replace(out / "data-bin", out / "data-bin.stk-tmp")  # as if killed during binarisation
    (out / "data-bin.stk-tmp" / "train.de-en.de.bin").write_bytes(b"half")
    capsys.readouterr()
    manifest = iwslt14.main(["--out", str(out), "--archive", str(archive), "--vocab-size", "300",
                             "--workers", "1"])
    log = capsys.readouterr().out
    assert "raw/ exists, skipping" in log and "spm/ exists, skipping" in log
    assert "building data-bin/" in log
    assert os.stat(out / "spm" / "spm.model").st_mtime_ns == spm_mtime
    assert not (out / "data-bin.stk-tmp").exists()
    assert manifest["sizes_binarized"] == expected["sizes"]
    assert note.read_text() == "keep me"


def test_a_changed_setting_rebuilds_only_the_stages_it_shapes(prepared, capsys, monkeypatch):
    archive, out, _, _ = prepared
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and "lock" not in path.name}

    class Stopped(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stopped

    with monkeypatch.context() as patch:  # fairseq-preprocess is stopped before it runs, to save time
        patch.setattr(pipeline, "run_child", stop)
        capsys.readouterr()
        with pytest.raises(Stopped):
            iwslt14.main(["--out", str(out), "--archive", str(archive), "--vocab-size", "400", "--workers", "1"])
    log = capsys.readouterr().out
    assert "settings changed since the last prepare of this directory: vocab_size was 300, now 400" in log
    assert "raw/ exists, skipping" in log and "tok/ exists, skipping" in log
    assert "spm/ is out of date, rebuilding it: config vocab_size was 300, now 400" in log
    assert len((out / "spm" / "spm.vocab").read_text().splitlines()) == 400
    # Back to the first setting: sentencepiece gives the same model again, so the data-bin is kept.
    iwslt14.main(["--out", str(out), "--archive", str(archive), "--vocab-size", "300", "--workers", "1"])
    log = capsys.readouterr().out
    assert "spm/ is out of date, rebuilding it: config vocab_size was 400, now 300" in log
    assert "data-bin/ exists, skipping" in log
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and "lock" not in path.name}
    assert after == before


def test_a_foreign_directory_is_refused(prepared, tmp_path):
    archive, out, _, _ = prepared
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="did not make"):
        iwslt14.main(["--out", str(foreign), "--archive", str(archive), "--vocab-size", "300"])
    assert (foreign / "thesis.tex").read_text() == "x"


def test_missing_corrupt_or_wrong_archive(prepared, tmp_path):
    archive, _, _, _ = prepared
    with pytest.raises(FileNotFoundError, match="nowhere.tgz"):
        iwslt14.main(["--out", str(tmp_path / "a"), "--archive", str(tmp_path / "nowhere.tgz")])
    truncated = tmp_path / "de-en.tgz"
    truncated.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(ValueError, match="corrupt"):
        iwslt14.main(["--out", str(tmp_path / "b"), "--archive", str(truncated), "--vocab-size", "300"])
    other = tmp_path / "other.tgz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(__file__, arcname="de-en/README")
    with pytest.raises(ValueError, match="lacks .*train.tags.de-en.de"):
        iwslt14.main(["--out", str(tmp_path / "c"), "--archive", str(other), "--vocab-size", "300"])


def test_unsupported_pair_and_strict_sizes(prepared, tmp_path):
    archive, _, _, _ = prepared
    with pytest.raises(ValueError, match="fr-en"):
        iwslt14.main(["--out", str(tmp_path / "a"), "--archive", str(archive), "--source-lang", "fr"])
    with pytest.raises(ValueError, match="expected 160239"):
        iwslt14.main(["--out", str(tmp_path / "b"), "--archive", str(archive), "--vocab-size", "300",
                      "--strict-sizes"])


def test_xml_and_tag_filters_match_the_shell_recipe():
    xml = '<doc>\n<seg id="3">  Das ist ’s .  </seg>\n<title>x</title>\n<seg id="4">Ja</seg>\n</doc>\n'
    assert iwslt14.seg_lines(xml) == ["Das ist 's .", "Ja"]
    tags = "<url>u</url>\n<talkid>1</talkid>\n<keywords>k</keywords>\n<title>T</title>\n" \
           "<description>D d</description>\nHallo Welt\n"
    assert iwslt14.train_lines(tags) == ["T", "D d", "Hallo Welt"]
