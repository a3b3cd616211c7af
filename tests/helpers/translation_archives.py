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
                  "<keywords>talks, science</keywords>", f"<talkid>{talk}</talkid>",
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


# --- WMT17 --------------------------------------------------------------------------------------

def wmt_sgm(segments: list[str], setid: str, lang: str, kind: str) -> str:
    """A WMT SGML file: srcset/refset, docs, one <seg id=..> per line, as in dev.tgz/test.tgz."""
    tag = "srcset" if kind == "src" else "refset"
    lines = [f'<{tag} setid="{setid}" srclang="any" trglang="{lang}">',
             f'<doc sysid="{kind}" docid="doc-1" genre="news" origlang="en">', "<p>"]
    lines += [f'<seg id="{i}">{text}</seg>' for i, text in enumerate(segments, 1)]
    lines += ["</p>", "</doc>", f"</{tag}>"]
    return "\n".join(lines) + "\n"


def build_wmt_archives(directory: Path, pair: str, n_per_corpus: int = 60, n_eval: int = 6) -> dict:
    """The WMT17 archives of one pair under their official names; returns the expected texts."""
    source_lang, target_lang = pair.split("-")
    if pair == "en-de":
        corpora = {"training-parallel-europarl-v7.tgz": "training/europarl-v7.de-en.{lang}",
                   "training-parallel-commoncrawl.tgz": "commoncrawl.de-en.{lang}",
                   "training-parallel-nc-v12.tgz": "training/news-commentary-v12.de-en.{lang}",
                   "rapid2016.tgz": "rapid2016.de-en.{lang}"}
        evals = {"dev.tgz": [("newstest2015", "ende"), ("newstest2016", "ende")],
                 "test.tgz": [("newstest2017", "ende")]}
    else:
        corpora = {"training-parallel-nc-v12.tgz": "training/news-commentary-v12.zh-en.{lang}",
                   "UNv1.0.en-zh.tar.gz": "en-zh/UNv1.0.en-zh.{lang}"}
        evals = {"dev.tgz": [("newsdev2017", "zhen")], "test.tgz": [("newstest2017", "zhen")]}
    n_sets = sum(len(sets) for sets in evals.values())
    pairs = sentences(23 if pair == "en-de" else 29, n_per_corpus * len(corpora) + n_sets * n_eval)
    if source_lang == "zh":  # a Chinese-looking source side: no spaces, full-width punctuation
        pairs = [(s.replace(" ", "").replace(".", "。"), t) for s, t in pairs]
    train = pairs[:n_per_corpus * len(corpora)]
    for i, (archive, pattern) in enumerate(corpora.items()):
        chunk = train[i * n_per_corpus:(i + 1) * n_per_corpus]
        write_tgz(directory / archive, {
            pattern.format(lang=source_lang): "\n".join(p[0] for p in chunk) + "\n",
            pattern.format(lang=target_lang): "\n".join(p[1] for p in chunk) + "\n"})
    eval_pairs = iter(pairs[len(train):])
    expected = {"train": train}
    for archive, sets in evals.items():
        folder = archive.split(".")[0]
        files = {}
        for setid, code in sets:  # each test set its own sentences, as in the real ones
            chunk = [next(eval_pairs) for _ in range(n_eval)]
            files[f"{folder}/{setid}-{code}-src.{source_lang}.sgm"] = wmt_sgm([p[0] for p in chunk], setid, source_lang, "src")
            files[f"{folder}/{setid}-{code}-ref.{target_lang}.sgm"] = wmt_sgm([p[1] for p in chunk], setid, target_lang, "ref")
            # The real dev/test archives hold every WMT17 pair and direction, the other ones too.
            files[f"{folder}/{setid}-csen-src.cs.sgm"] = wmt_sgm(["Nepoužito."], setid, "cs", "src")
            expected[setid] = chunk
        write_tgz(directory / archive, files)
    return expected
