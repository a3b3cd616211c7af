"""The gettext-catalog corpus: .mo files written here with polib, read back, filtered and split."""

import hashlib
import json
import re

import polib
import pytest

from stk_nmt.data import catalogs, pipeline
from stk_nmt.data.io import read_lines


def write_mo(path, entries, plural_forms="nplurals=2; plural=(n > 1);"):
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": plural_forms}
    for entry in entries:
        po.append(polib.POEntry(**entry))
    path.parent.mkdir(parents=True, exist_ok=True)
    po.save_as_mofile(str(path))


def e(msgid, msgstr="", **kw):
    return dict(msgid=msgid, msgstr=msgstr, **kw)


@pytest.fixture
def locale(tmp_path):
    root = tmp_path / "locale"
    write_mo(root / "fr" / "LC_MESSAGES" / "a.mo", [
        e("Open the file", "Ouvrir le fichier"),
        e("Save", "Enregistrer"),
        e("Untranslated entry", ""),
        e("Same", "Same"),  # an untranslated copy
        e("%s", "%s"),
        e("%d: %s", "%d : %s"),  # placeholders and punctuation only
        e("<b>%(name)s</b>", "<b>%(name)s</b> !"),  # markup and placeholders only
        e("Close\nthe   window", "Fermer\tla fenêtre"),  # whitespace becomes single spaces
        e("one two three four five six", "un deux trois quatre cinq six"),  # longer than --max-words 5
        e("%d file copied", msgid_plural="%d files copied",
          msgstr_plural={0: "%d fichier copié", 1: "%d fichiers copiés"}),
    ])
    write_mo(root / "fr" / "LC_MESSAGES" / "b.mo", [
        e("Save", "Sauvegarder"),  # a duplicate source: a.mo (sorted first) wins
        e("Quit", "Quitter"),
    ])
    # Three plural forms: only the singular pair is taken.
    write_mo(root / "ru" / "LC_MESSAGES" / "a.mo", [
        e("%d file", msgid_plural="%d files", msgstr_plural={0: "%d файл", 1: "%d файла", 2: "%d файлов"}),
    ], plural_forms="nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);")
    return root


def test_pairs_plural_forms_duplicates_and_filters(locale):
    pairs, counts = catalogs.build_pairs(catalogs.find_catalogs(locale, "fr"), min_words=1, max_words=5)
    assert dict(pairs) == {
        "Open the file": "Ouvrir le fichier",
        "Save": "Enregistrer",
        "Close the window": "Fermer la fenêtre",
        "%d file copied": "%d fichier copié",
        "%d files copied": "%d fichiers copiés",
        "Quit": "Quitter",
    }
    # 10 translated pairs read (the empty entry and the two copies "Same", "%s" are not pairs);
    # 2 placeholder/markup only, 1 too long, 1 duplicate source.
    assert counts == {"pairs": 10, "dropped_placeholder_or_markup_only": 2, "dropped_length": 1,
                      "dropped_duplicate_source": 1, "kept": 6}
    ru_pairs, _ = catalogs.build_pairs(catalogs.find_catalogs(locale, "ru"))
    assert ru_pairs == [("%d file", "%d файл")]


def test_placeholder_detection():
    assert not catalogs.has_text("%1$s: %-10d %(count)s {0} ${HOME} <br/> &amp; 42 !")
    assert catalogs.has_text("%s files")
    assert catalogs.has_text("Éditer")


def test_missing_language_fails_clearly(locale):
    with pytest.raises(FileNotFoundError, match=r"no gettext catalogs for target_lang 'de'.*fr, ru"):
        catalogs.find_catalogs(locale, "de")


def test_split_is_a_function_of_the_source_alone():
    sources = [f"message number {i}" for i in range(2000)]
    splits = [catalogs.split_of(s, 0.1, 0.2) for s in sources]
    # Independent computation of the documented rule.
    for source, split in zip(sources, splits):
        u = int(hashlib.sha256(source.encode()).hexdigest()[:16], 16) / 2 ** 64
        assert split == ("test" if u < 0.2 else "valid" if u < 0.3 else "train")
    assert 0.15 < splits.count("test") / 2000 < 0.25 and 0.06 < splits.count("valid") / 2000 < 0.14


def test_prepare_writes_disjoint_splits_and_the_manifest(locale, tmp_path, capsys, monkeypatch):
    # Enough distinct messages for sentencepiece and every split.
    entries = [e(f"Delete item number {i} now", f"Supprimer l'élément numéro {i} maintenant") for i in range(300)]
    entries.append(e("Delete item number 0 now", "Effacer"))  # duplicate source inside one catalog
    write_mo(locale / "fr" / "LC_MESSAGES" / "c.mo", entries)
    out = tmp_path / "out"
    manifest = catalogs.main(["--target-lang", "fr", "--out", str(out), "--locale-dir", str(locale),
                              "--valid-fraction", "0.1", "--test-fraction", "0.1", "--vocab-size", "60"])
    raw = {split: read_lines(out / "raw" / f"{split}.en") for split in catalogs.SPLITS}
    sets = {split: set(lines) for split, lines in raw.items()}
    assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"] or sets["valid"] & sets["test"])
    assert sum(map(len, raw.values())) == manifest["counts"]["kept"] == 307
    assert len(sets["test"]) == len(raw["test"])  # de-duplicated
    saved = json.loads((out / catalogs.MANIFEST).read_text())
    assert [c["catalog"] for c in saved["catalogs"]] == ["a.mo", "b.mo", "c.mo"]
    assert saved["catalogs"][2]["sha256"] == hashlib.sha256((locale / "fr/LC_MESSAGES/c.mo").read_bytes()).hexdigest()
    for split, lines in raw.items():
        assert saved["splits"][split]["pairs"] == len(lines)
        expected = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
        assert saved["splits"][split]["sha256_source"] == expected
    assert (out / "data-bin" / "dict.fr.txt").is_file()
    prepared = json.loads((out / "prepared.json").read_text())
    assert prepared["config"]["corpus"] == f"catalogs-fr-{saved['catalog_digest'][:16]}"
    # Another catalog set is another corpus: every stage is rebuilt from it (never mixed with the
    # old one), and the log says why. fairseq-preprocess is stopped before it runs, to save time.
    write_mo(locale / "fr" / "LC_MESSAGES" / "d.mo", [e("New message", "Nouveau message")])

    class Stopped(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stopped

    monkeypatch.setattr(pipeline, "run_child", stop)
    capsys.readouterr()
    with pytest.raises(Stopped):
        catalogs.main(["--target-lang", "fr", "--out", str(out), "--locale-dir", str(locale),
                       "--valid-fraction", "0.1", "--test-fraction", "0.1", "--vocab-size", "60"])
    log = capsys.readouterr().out
    old_corpus = prepared["config"]["corpus"]
    assert f"settings changed since the last prepare of this directory: corpus was '{old_corpus}'" in log
    assert "raw/ is out of date, rebuilding it: config corpus was" in log
    assert f"new input {locale / 'fr' / 'LC_MESSAGES' / 'd.mo'}" in log
    assert "data-bin/ is out of date" in log
    raw = [line for split in catalogs.SPLITS for line in read_lines(out / "raw" / f"{split}.en")]
    assert "New message" in raw and len(raw) == 308


@pytest.mark.parametrize("damage", ["truncated by one byte", "truncated to half", "bogus header", "header only"])
def test_a_truncated_or_bogus_catalog_is_named(locale, damage):
    # Defect 12: today polib fails with a bare struct.error naming no file, or reads a truncated
    # catalog without a word.
    path = locale / "fr" / "LC_MESSAGES" / "a.mo"
    data = path.read_bytes()
    whole = catalogs.build_pairs(catalogs.find_catalogs(locale, "fr"))
    damaged = {"truncated by one byte": data[:-1], "truncated to half": data[:len(data) // 2],
               "bogus header": b"\xde\x12\x04\x95" + b"\0" * 3, "header only": data[:28]}[damage]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        catalogs.build_pairs(catalogs.find_catalogs(locale, "fr"))
    path.write_bytes(data)
    assert catalogs.build_pairs(catalogs.find_catalogs(locale, "fr")) == whole
