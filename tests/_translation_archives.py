"""Miniature corpus archives with the real file names and XML/SGML layout, built by the tests.

Sentences come from the project's synthetic generator (source side stands in for German or
Chinese, target side for English): the pipelines only care about the layout and line structure.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from stk_nmt.data.synthetic import generate_corpus


def sentences(seed: int, n: int) -> list[tuple[str, str]]:
    corpus = generate_corpus(seed, n_train=n, n_valid=1, n_test=1)
    return corpus["train"]


def write_tgz(path: Path, files: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- IWSLT14 ------------------------------------------------------------------------------------

IWSLT_TEST_NAMES = ["TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012"]


def iwslt_train_tags(pairs: list[tuple[str, str]], talk_size: int, side: int,
                     bad_pairs: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """train.tags.de-en.<lang> text: talks opened by metadata lines; returns the text and the
    lines the recipe keeps (metadata dropped, title/description tags stripped)."""
    lines, kept = [], []
    for talk, start in enumerate(range(0, len(pairs), talk_size)):
        title = f"Talk {talk} title" if side == 0 else f"Title of talk {talk}"
        description = f"About talk {talk} here" if side == 0 else f"Talk {talk} is about this"
        lines += [f"<url>http://www.ted.com/talks/talk{talk}.html</url>",
                  f"<keywords>talks, science</keywords>", f"<talkid>{talk}</talkid>",
                  f"<title>{title}</title>", f"<description>{description}</description>"]
        kept += [title, description]
        for pair in pairs[start:start + talk_size]:
            lines.append(pair[side])
            kept.append(pair[side])
    for pair in bad_pairs:  # fail length cleaning, but survive the tag filtering
        lines.append(pair[side])
        kept.append(pair[side])
    return "\n".join(lines) + "\n", kept


def iwslt_xml(segments: list[str], lang: str, name: str) -> str:
    docs = ['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>",
            f'<refset setid="iwslt2014-{name}" srclang="de" trglang="{lang}">',
            '<doc docid="1" genre="lectures">', "<url>http://www.ted.com/talks/x.html</url>",
            "<talkid>1</talkid>", "<title>A title</title>"]
    docs += [f'<seg id="{i}"> {text} </seg>' for i, text in enumerate(segments, 1)]
    docs += ["</doc>", "</refset>", "</mteval>"]
    return "\n".join(docs) + "\n"


def build_iwslt_archive(path: Path, n_train: int = 300, n_test_each: int = 4) -> dict:
    """de-en.tgz with de-en/train.tags.de-en.{de,en} and the IWSLT14.TED*.xml dev/test files.

    Returns what the recipe must produce, computed here independently of the pipeline."""
    pairs = sentences(11, n_train + 5 * n_test_each)
    train, test = pairs[:n_train], pairs[n_train:]
    bad = [("Ja.", "Yes, this sentence is far too long to be its translation ."),
           ("Eins zwei drei vier fuenf sechs sieben acht neun zehn .", "One.")]
    files, kept = {}, {}
    for side, lang in enumerate(("de", "en")):
        text, kept[lang] = iwslt_train_tags(train, talk_size=50, side=side, bad_pairs=bad)
        files[f"de-en/train.tags.de-en.{lang}"] = text
        for i, name in enumerate(IWSLT_TEST_NAMES):
            chunk = [p[side] for p in test[i * n_test_each:(i + 1) * n_test_each]]
            files[f"de-en/IWSLT14.{name}.de-en.{lang}.xml"] = iwslt_xml(chunk, lang, name)
    # The real archive holds more files than the recipe reads.
    files["de-en/IWSLT14.TED.tst2013.de-en.de.xml"] = iwslt_xml(["Nicht benutzt ."], "de", "tst2013")
    files["de-en/README"] = "IWSLT 2014 de-en\n"
    write_tgz(path, files)
    n_clean = len(kept["de"]) - len(bad)
    return {
        "kept_train_de": kept["de"][:n_clean],
        "kept_train_en": kept["en"][:n_clean],
        "test_de": [p[0] for p in test],
        "test_en": [p[1] for p in test],
        "sizes": {"train": n_clean - n_clean // 23, "valid": n_clean // 23, "test": len(test)},
    }
