"""Preparing one's own parallel files: the checks that run before any work is done."""

import pytest

from fairseq_tiny import make_corpus
from stk_nmt.data import own
from stk_nmt.data.io import atomic_write_lines, read_parallel
from stk_nmt.data.pipeline import PreparedDir, PrepareConfig
from stk_nmt.data.text import length_filter


def write_pair(prefix, source, target, langs=("fr", "en")):
    atomic_write_lines(prefix.parent / f"{prefix.name}.{langs[0]}", source)
    atomic_write_lines(prefix.parent / f"{prefix.name}.{langs[1]}", target)


def args(tmp_path, *extra):
    return ["--source-lang", "fr", "--target-lang", "en", "--out", str(tmp_path / "out"),
            "--train", str(tmp_path / "train"), "--valid", str(tmp_path / "valid"),
            "--test", str(tmp_path / "test"), *extra]


def test_mismatched_line_counts_name_both_files(tmp_path):
    write_pair(tmp_path / "train", ["a b", "c d", "e f"], ["a b", "c d"])
    write_pair(tmp_path / "valid", ["x"], ["y"])
    write_pair(tmp_path / "test", ["x"], ["y"])
    with pytest.raises(ValueError, match=r"train.fr has 3 lines, .*train.en has 2"):
        own.main(args(tmp_path))
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_empty_corpus_and_missing_file(tmp_path):
    write_pair(tmp_path / "train", ["", "  "], ["", ""])
    write_pair(tmp_path / "valid", ["x"], ["y"])
    with pytest.raises(ValueError, match="empty corpus"):
        own.main(args(tmp_path))
    write_pair(tmp_path / "train", ["a"], ["b"])
    with pytest.raises(FileNotFoundError, match="test.fr"):
        own.main(args(tmp_path))


def test_bad_language_code(tmp_path):
    with pytest.raises(ValueError, match="source_lang"):
        own.make_config("f r", "en", 1)
    with pytest.raises(ValueError, match="both 'en'"):
        own.make_config("en", "en", 1)


def test_length_filter_is_the_clean_corpus_rule():
    source = ["a b c", "a", "a b c d e f", "", "a b"]
    target = ["x y z", "x y", "x y z", "x", "x y z"]
    # pair 1: ratio 2 > 1.5; pair 2: 6/3 = 2 > 1.5; pair 3: empty; pair 4: 3/2 = 1.5 is kept.
    assert length_filter(source, target, 1, 175, 1.5) == [0, 4]
    assert length_filter(source, target, 1, 2, 3.0) == [1]
    with pytest.raises(ValueError, match="ratio"):
        length_filter(source, target, 1, 5, 0)


def test_test_sets_must_be_numbered_in_order():
    with pytest.raises(ValueError, match="test_sets keys"):
        PrepareConfig(corpus="x", source_lang="a", target_lang="b", test_sets={"test1": "t"})


def test_stage_builder_replaces_a_half_written_stage(tmp_path):
    prep = PreparedDir(tmp_path / "out", PrepareConfig(corpus="x", source_lang="a", target_lang="b"))
    prep.claim()
    (tmp_path / "out" / "raw.stk-tmp").mkdir()
    (tmp_path / "out" / "raw.stk-tmp" / "junk").write_text("half")
    prep.claim()  # a re-run clears its own leftovers
    assert not (tmp_path / "out" / "raw.stk-tmp").exists()
    prep.build("raw", lambda tmp: atomic_write_lines(tmp / "train.a", ["x"]), [])
    assert read_parallel(tmp_path / "out" / "raw" / "train.a", tmp_path / "out" / "raw" / "train.a")[0] == ["x"]
    prep.build("raw", lambda tmp: pytest.fail("a finished stage is not rebuilt"), [])


def tiny_corpus(tmp_path):
    make_corpus(tmp_path, n_train=60)
    return ["--source-lang", "src", "--target-lang", "tgt", "--out", str(tmp_path / "out"),
            "--train", str(tmp_path / "train"), "--valid", str(tmp_path / "valid"),
            "--test", str(tmp_path / "test"), "--vocab-size", "18", "--workers", "1"]


def test_changed_input_content_rebuilds_every_stage(tmp_path, capsys):
    argv = tiny_corpus(tmp_path)
    own.main(argv)
    train = tmp_path / "train.src"
    old_bin = (tmp_path / "out" / "data-bin" / "train.src-tgt.src.bin").read_bytes()
    # Same path and size, other content: every word's digit shifts by one.
    text = train.read_text()
    new = text.translate(str.maketrans("0123456789", "1234567890"))
    assert len(new) == len(text) and new != text
    train.write_text(new)
    capsys.readouterr()
    own.main(argv)
    log = capsys.readouterr().out
    assert f"raw/ is out of date, rebuilding it: input {train} changed" in log
    assert "exists, skipping (built from the same inputs)" not in log
    for stage in ("tok", "spm", "data-bin"):
        assert f"{stage}/ is out of date, rebuilding it" in log
    assert (tmp_path / "out" / "tok" / "train.src").read_text() == new
    assert (tmp_path / "out" / "data-bin" / "train.src-tgt.src.bin").read_bytes() != old_bin
    own.main(argv)  # nothing changed now: every stage is kept
    assert capsys.readouterr().out.count("exists, skipping (built from the same inputs)") == 4


def test_non_utf8_input_names_file_line_and_byte(tmp_path):
    write_pair(tmp_path / "train", ["a b", "c d", "e f"], ["a b", "c d", "e f"])
    write_pair(tmp_path / "valid", ["x"], ["y"])
    write_pair(tmp_path / "test", ["x"], ["y"])
    (tmp_path / "train.fr").write_bytes("a b\nc d\ne caf\xe9 f\n".encode("latin-1"))
    # "a b\n" 4 bytes, "c d\n" 4 bytes, "e caf" 5 bytes: the bad byte is at offset 13.
    with pytest.raises(ValueError, match=r"train\.fr is not UTF-8: line 3, byte offset 13 .*0xe9"):
        own.main(args(tmp_path))


def test_blank_lines_in_a_test_set_stop_preparation_naming_them(tmp_path):
    write_pair(tmp_path / "train", ["a b", "c d"], ["a b", "c d"])
    write_pair(tmp_path / "valid", ["x"], ["y"])
    write_pair(tmp_path / "test", ["x", "", "z", "w"], ["y", "b", "c", " "])
    with pytest.raises(ValueError, match=r"2 blank line\(s\) in .*test\.fr / .*test\.en, lines 2, 4"):
        own.main(args(tmp_path))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("module,argv,vocab_size,workers", [
    ("own", ["--source-lang", "a", "--target-lang", "b", "--out", "o", "--train", "t", "--valid", "v", "--test", "x"],
     8000, 2),
    ("iwslt14", ["--out", "o"], 10_000, 2),
    ("wmt17", ["--pair", "en-de", "--out", "o"], 32_000, 2),
    ("catalogs", ["--target-lang", "fr", "--out", "o"], 4000, 1),
])
def test_every_prepare_cli_has_the_common_flags_with_its_own_defaults(module, argv, vocab_size, workers, monkeypatch):
    import argparse
    import importlib

    parsed = []
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        parsed.append(original(self, args, namespace))
        raise SystemExit(0)  # stop before any preparation

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    main = importlib.import_module(f"stk_nmt.data.{module}").main
    with pytest.raises(SystemExit):
        main(argv)
    assert (parsed[0].vocab_size, parsed[0].workers, parsed[0].seed) == (vocab_size, workers, 1)
    with pytest.raises(SystemExit):
        main([*argv, "--vocab-size", "123", "--workers", "3", "--seed", "7"])
    assert (parsed[1].vocab_size, parsed[1].workers, parsed[1].seed) == (123, 3, 7)
