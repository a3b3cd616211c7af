"""A prepared corpus never reuses what no longer matches its records.

One tiny corpus is prepared once (into a folder whose name holds a comma, as a user's --out may);
each test damages it and reruns the same command, which must rebuild the damaged stage to the very
bytes it had (the test then leaves the folder as it found it) or stop with an error naming the
file. The seeded fault suite at the end does this for every intermediate file and four kinds of
damage.
"""

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from fairseq_tiny import make_corpus
from stk_nmt.data import own, pipeline
from stk_nmt.data.databin import check_dataset, dictionary_size, read_index
from stk_nmt.data.io import read_lines

OUT_NAME = "prepared,out"  # sentencepiece and fairseq-preprocess both split path lists on commas


def own_args(corpus, out, vocab_size=18):
    return ["--source-lang", "src", "--target-lang", "tgt", "--out", str(out), "--train", str(corpus / "train"),
            "--valid", str(corpus / "valid"), "--test", str(corpus / "test"), "--vocab-size", str(vocab_size),
            "--workers", "1"]


def snapshot(out):
    """Every file of a prepared folder (the lock, which names the last process, aside) -> its bytes."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != pipeline.LOCK_FILE}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("integrity")
    make_corpus(corpus, n_train=60)
    out = corpus / OUT_NAME
    argv = own_args(corpus, out)
    own.main(argv)
    return argv, out, snapshot(out)


class PreprocessNotRun(Exception):
    pass


def stop_preprocess(*args, **kwargs):
    raise PreprocessNotRun


def rerun(argv, capsys):
    capsys.readouterr()
    own.main(argv)
    return capsys.readouterr().out


def assert_as_prepared(out, before):
    after = snapshot(out)
    assert sorted(after) == sorted(before)
    changed = [name for name in before if after[name] != before[name]]
    assert changed == []


def test_a_comma_in_out_reaches_sentencepiece_and_fairseq_as_one_path(prepared):
    # Defect 11: today sentencepiece fails with NOT_FOUND on the part of the path after the comma.
    _, out, _ = prepared
    manifest = json.loads((out / "prepared.json").read_text())
    for split in ("train", "valid", "test"):
        n = len(read_lines(out / "spm" / f"{split}.src"))
        assert manifest["sizes_binarized"][split] == n == len(read_lines(out / "tok" / f"{split}.tgt"))
        _, sizes, _ = read_index(out / "data-bin" / f"{split}.src-tgt.src.idx")
        # fairseq stores each line's pieces plus </s>.
        assert sizes.tolist() == [len(line.split()) + 1 for line in read_lines(out / "spm" / f"{split}.src")]


def test_a_line_deleted_from_an_intermediate_file_rebuilds_its_stage(prepared, capsys):
    # Defect 1: today the rerun exits 0 and spm/train.src no longer pairs with spm/train.tgt.
    argv, out, before = prepared
    tok = out / "tok" / "train.src"
    lines = tok.read_text().splitlines(keepends=True)
    tok.write_text("".join(lines[:9] + lines[10:]))
    log = rerun(argv, capsys)
    assert "tok/ is out of date, rebuilding it: tok/train.src no longer matches its record (60 lines" in log
    assert "-> 59 lines" in log
    for stage in ("raw", "spm", "data-bin"):  # tok/ is rebuilt to the same bytes: nothing after it changes
        assert f"{stage}/ exists, skipping" in log
    assert_as_prepared(out, before)


def test_a_truncated_data_bin_file_rebuilds_the_data_bin(prepared, capsys):
    # Defect 9: today prepare says "skipping ... done" and training fails naming no file.
    argv, out, before = prepared
    binary = out / "data-bin" / "train.src-tgt.src.bin"
    binary.write_bytes(before["data-bin/train.src-tgt.src.bin"][:-10])
    log = rerun(argv, capsys)
    assert "data-bin/ is out of date, rebuilding it: data-bin/train.src-tgt.src.bin no longer matches" in log
    assert_as_prepared(out, before)


def test_a_reader_of_the_data_bin_can_check_it_against_its_record_without_rebuilding(prepared):
    _, out, before = prepared
    pipeline.check_prepared(out, pipeline.STAGES)  # the undamaged folder passes
    binary = out / "data-bin" / "valid.src-tgt.tgt.bin"
    binary.write_bytes(before["data-bin/valid.src-tgt.tgt.bin"][:-2])
    try:
        with pytest.raises(ValueError, match=r"data-bin/valid\.src-tgt\.tgt\.bin no longer matches its record .*"
                                             r"run the prepare command that made it again"):
            pipeline.check_prepared(out)
    finally:
        binary.write_bytes(before["data-bin/valid.src-tgt.tgt.bin"])
    assert_as_prepared(out, before)


def test_the_data_bin_check_names_a_truncated_or_foreign_file(prepared, tmp_path):
    # The check that runs on every fresh data-bin, against its index and dictionary.
    _, out, before = prepared
    for name, data in before.items():
        if name.startswith("data-bin/"):
            (tmp_path / Path(name).name).write_bytes(data)
    prefix = tmp_path / "valid.src-tgt.tgt"
    n_symbols = dictionary_size(tmp_path / "dict.tgt.txt")
    assert n_symbols == 4 + len(read_lines(out / "data-bin" / "dict.tgt.txt"))
    check_dataset(prefix, n_symbols, 40)  # the undamaged files pass
    with pytest.raises(ValueError, match="indexes 40 sentences where its subword text has 41"):
        check_dataset(prefix, n_symbols, 41)
    whole = Path(f"{prefix}.bin").read_bytes()
    Path(f"{prefix}.bin").write_bytes(whole[:-2])
    with pytest.raises(ValueError, match=rf"valid\.src-tgt\.tgt\.bin holds {len(whole) - 2:,} bytes, but its "
                                         rf"index valid\.src-tgt\.tgt\.idx needs {len(whole):,}"):
        check_dataset(prefix, n_symbols, 40)
    Path(f"{prefix}.bin").write_bytes(whole)
    dtype, _, _ = read_index(Path(f"{prefix}.idx"))
    largest = int(np.fromfile(f"{prefix}.bin", dtype=dtype).max())
    check_dataset(prefix, largest + 1, 40)
    with pytest.raises(ValueError, match=rf"valid\.src-tgt\.tgt\.bin holds token id {largest}, beyond"):
        check_dataset(prefix, largest, 40)  # a dictionary one id short of what the text uses
    index = Path(f"{prefix}.idx").read_bytes()
    Path(f"{prefix}.idx").write_bytes(index[:-1])
    with pytest.raises(ValueError, match=r"valid\.src-tgt\.tgt\.idx holds .* an index of 40 sentences"):
        check_dataset(prefix, n_symbols, 40)
    Path(f"{prefix}.idx").write_bytes(index[:9] + struct.pack("<Q", 2) + index[17:])
    with pytest.raises(ValueError, match=r"valid\.src-tgt\.tgt\.idx has index version 2"):
        check_dataset(prefix, n_symbols, 40)


def test_a_truncated_stage_record_rebuilds_its_stage(prepared, capsys):
    # Defect 14: today prepare stops with "is not valid JSON".
    argv, out, before = prepared
    record = out / "spm" / pipeline.STAGE_RECORD
    record.write_bytes(before[f"spm/{pipeline.STAGE_RECORD}"][:100])
    log = rerun(argv, capsys)
    assert "spm/ is out of date, rebuilding it: its record is unreadable" in log
    assert "data-bin/ exists, skipping" in log  # sentencepiece rebuilt the very same model
    assert_as_prepared(out, before)


def test_a_stage_recorded_by_an_earlier_version_is_rebuilt_once(prepared, capsys):
    # Records made before they listed their files: the files cannot be checked, so the stage is rebuilt.
    argv, out, before = prepared
    record = json.loads(before[f"tok/{pipeline.STAGE_RECORD}"])
    del record["outputs"]
    (out / "tok" / pipeline.STAGE_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
    log = rerun(argv, capsys)
    assert "tok/ is out of date, rebuilding it: its record lists no files (written by an earlier version" in log
    assert "spm/ exists, skipping" in log
    assert_as_prepared(out, before)
    assert rerun(argv, capsys).count("exists, skipping (built from the same inputs)") == 4


def test_an_empty_configuration_record_is_rewritten_and_nothing_rebuilt(prepared, capsys):
    # Defect 16 (second half): today an empty .stk-prepare.json is "a different configuration".
    argv, out, before = prepared
    (out / pipeline.CONFIG_FILE).write_text("")
    log = rerun(argv, capsys)
    assert f"{pipeline.CONFIG_FILE} is unreadable (0 bytes): rewriting it" in log
    assert log.count("exists, skipping (built from the same inputs)") == 4
    assert_as_prepared(out, before)


def test_a_deleted_configuration_record_is_written_again_and_nothing_rebuilt(prepared, capsys):
    # Not refused as "files this pipeline did not make": the stage records say whose they are.
    argv, out, before = prepared
    (out / pipeline.CONFIG_FILE).unlink()
    log = rerun(argv, capsys)
    assert f"{pipeline.CONFIG_FILE} is missing: writing it again" in log
    assert log.count("exists, skipping (built from the same inputs)") == 4
    assert_as_prepared(out, before)


def test_a_failed_first_prepare_does_not_block_the_corrected_one_and_a_changed_setting_rebuilds(
        tmp_path, capsys, monkeypatch):
    # Defect 16 and issue 27 item 7: today the corrected rerun is refused as "prepared with a
    # different configuration ... remove that directory yourself".
    make_corpus(tmp_path, n_train=60)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="vocab_size=8000 is too large for this corpus"):
        own.main(own_args(tmp_path, out, vocab_size=8000))
    log = rerun(own_args(tmp_path, out, vocab_size=16), capsys)
    assert "settings changed since the last prepare of this directory: vocab_size was 8000, now 16" in log
    assert len(read_lines(out / "spm" / "spm.vocab")) == 16
    # The corrected run's joined fairseq dictionary holds the pieces its text uses.
    pieces = {piece for split in ("train", "valid", "test") for lang in ("src", "tgt")
              for line in read_lines(out / "spm" / f"{split}.{lang}") for piece in line.split()}
    symbols = {line.split()[0] for line in read_lines(out / "data-bin" / "dict.src.txt")}
    # fairseq pads the dictionary to a multiple of 8 with madeupwordNNNN symbols.
    assert {s for s in symbols if not s.startswith("madeupword")} == pieces
    # The data-bin would be rebuilt too; fairseq-preprocess is stopped there to save its seconds.
    monkeypatch.setattr(pipeline, "run_child", stop_preprocess)
    with pytest.raises(PreprocessNotRun):
        own.main(own_args(tmp_path, out, vocab_size=18))
    log = capsys.readouterr().out
    assert "vocab_size was 16, now 18" in log
    assert "raw/ exists, skipping" in log and "tok/ exists, skipping" in log  # not shaped by the vocabulary
    assert "spm/ is out of date, rebuilding it: config vocab_size was 16, now 18" in log
    assert "data-bin/ is out of date, rebuilding it: config vocab_size was 16, now 18" in log
    assert len(read_lines(out / "spm" / "spm.vocab")) == 18


# --- the seeded fault suite --------------------------------------------------------------------

# Each damage takes the file's bytes and a generator seeded by the file's name and the damage, so a
# run damages the same places every time and each file at its own place.

def delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True)
    if len(lines) < 2:
        return data[1:]
    n = rng.randrange(len(lines))
    return b"".join(lines[:n] + lines[n + 1:])


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, len(data))] if len(data) > 1 else b""


def flip_byte(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]


def empty(data: bytes, rng: random.Random) -> bytes:
    return b""


def damaged(name: str, damage, data: bytes) -> bytes:
    return damage(data, random.Random(f"{name}:{damage.__name__}"))


DAMAGES = (delete_line, truncate, flip_byte, empty)


def assert_rebuilt_or_named(argv, out, before, name, capsys):
    """The rerun either restores every file byte for byte or stops with an error naming `name`."""
    capsys.readouterr()
    try:
        own.main(argv)
    except Exception as error:  # noqa: BLE001 - any stop is allowed, if it names the file
        assert Path(name).name in str(error), f"damaged {name}: the error names another file: {error}"
        (out / name).write_bytes(before[name])  # the user restores it; the next case starts whole
        return "stopped"
    log = capsys.readouterr().out
    after = snapshot(out)
    assert sorted(after) == sorted(before), f"damaged {name}: the files differ: {sorted(set(after) ^ set(before))}"
    changed = [other for other in before if after[other] != before[other]]
    assert changed == [], f"damaged {name}: the rerun left {changed} other than prepared\n{log}"
    return "rebuilt"


@pytest.mark.slow
def test_every_damaged_intermediate_file_is_rebuilt_byte_for_byte_or_named(prepared, capsys, monkeypatch):
    argv, out, before = prepared
    cheap = [name for name in before if not name.startswith("data-bin/")]
    assert len(cheap) == 2 + 3 * 1 + 6 + 12 + 8  # prepared.json, .stk-prepare.json, records, raw, tok, spm
    for name in cheap:
        for damage in DAMAGES:
            bad = damaged(name, damage, before[name])
            assert bad != before[name]
            (out / name).write_bytes(bad)
            assert_rebuilt_or_named(argv, out, before, name, capsys)

    # The data-bin: every file and damage is found before fairseq-preprocess would run again (the
    # rerun is stopped there, a few seconds apiece saved), then three full rebuilds.
    binary = sorted(name for name in before if name.startswith("data-bin/"))
    assert len(binary) == 2 + 12 + 1 + 1  # dictionaries, .bin/.idx, preprocess.log, record

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "run_child", stop_preprocess)
        for name in binary:
            for damage in DAMAGES:
                (out / name).write_bytes(damaged(name, damage, before[name]))
                capsys.readouterr()
                with pytest.raises(PreprocessNotRun):
                    own.main(argv)
                log = capsys.readouterr().out
                # A damaged record may still be JSON: then it lists other files or settings.
                reason = "" if name.endswith(pipeline.STAGE_RECORD) else f"{name} no longer matches its record"
                assert f"data-bin/ is out of date, rebuilding it: {reason}" in log, (name, damage.__name__)
                (out / name).write_bytes(before[name])
    # (A truncated .bin is rebuilt in test_a_truncated_data_bin_file_rebuilds_the_data_bin.)
    for name, damage in [("data-bin/valid.src-tgt.src.idx", delete_line), ("data-bin/dict.src.txt", flip_byte),
                         (f"data-bin/{pipeline.STAGE_RECORD}", empty)]:
        (out / name).write_bytes(damaged(name, damage, before[name]))
        assert assert_rebuilt_or_named(argv, out, before, name, capsys) == "rebuilt"
    assert not any(path.name.endswith(".stk-tmp") for path in out.iterdir())
