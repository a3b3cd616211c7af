"""A prepared corpus as evaluate and recipes read it, written by hand (not a test module)."""

import json


def fake_prepared(root, dictionary, train_text=None):
    """data-bin dictionaries (and, with train_text, one binarised training split), one reference.

    The .bin/.idx files are stand-ins: only their bytes matter to the training record's hashes."""
    (root / "data-bin").mkdir(parents=True)
    for lang in ("de", "en"):
        (root / "data-bin" / f"dict.{lang}.txt").write_text(dictionary)
        if train_text is not None:
            (root / "data-bin" / f"train.de-en.{lang}.bin").write_text(train_text)
            (root / "data-bin" / f"train.de-en.{lang}.idx").write_text("index")
    (root / "ref").mkdir()
    (root / "ref" / "test.en").write_text("Hello world\n")
    (root / "prepared.json").write_text(json.dumps({
        "config": {"target_lang": "en", "lowercase": False, "tokenizer": "none"},
        "data_bin": "data-bin", "test_sets": {"test": "t"}, "references": "ref"}))
    return root
