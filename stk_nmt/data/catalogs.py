"""An en->X parallel corpus from the system's gettext catalogs: real human translations, offline.

    python -m stk_nmt.data.catalogs --target-lang fr --out data/catalogs.en-fr \
        [--locale-dir /usr/share/locale] [--valid-fraction 0.02] [--test-fraction 0.03]

Every installed program's translations live in LOCALE_DIR/<lang>/LC_MESSAGES/*.mo. Each message
becomes a pair msgid -> msgstr; a plural entry gives (msgid, msgstr[0]) and, for languages with two
plural forms, (msgid_plural, msgstr[1]) (with three or more forms no single form is "the plural").
Dropped: empty and untranslated entries (msgstr empty or equal to msgid), the catalog header,
entries that are only placeholders or markup (%s, {0}, <b>, &amp; ... and no letter left), and
sources outside --min-words..--max-words. Newlines and tabs inside a message become spaces. Pairs
are de-duplicated by source (the first in sorted catalog order wins) and split by a hash of the
source, so a source sentence never crosses splits and the split does not depend on file order.
The raw text then goes through the shared pipeline (joint sentencepiece, fairseq-preprocess).

The corpus depends on what the machine has installed: catalogs.json records the catalogs used
(with a hash of each file), the counts at every filter, and a hash of each split, and the corpus
name in the pipeline configuration carries a digest of the catalogs, so a re-run on a machine with
other catalogs rebuilds every stage from them (saying so) instead of mixing the two. A catalog cut
short or that is no .mo file stops the run, naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import unicodedata
from collections import Counter
from pathlib import Path

# polib rather than gettext.GNUTranslations: GNUTranslations only answers lookups (its catalog is
# private and keys plural entries by (msgid, index) without msgid_plural), whereas polib exposes every
# entry with msgid, msgid_plural, msgstr_plural and the header, and can also write .mo (the tests).
import polib

from . import own
from ..files import write_json
from .io import TMP_SUFFIX, atomic_write_lines
from .pipeline import add_common_args, log, run_pipeline

SOURCE_LANG = "en"
MANIFEST = "catalogs.json"
SPLITS = ("train", "valid", "test")

# printf (%s, %1$d, %-10s, %(name)s, %%), brace ({0}, {name}, ${var}), markup tags and entities.
_PLACEHOLDER = re.compile(
    r"%(\(\w+\))?(\d+\$)?[-+ #0']*(\d+|\*)?(\.(\d+|\*))?(hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGaAcspn%]"
    r"|\$?\{[^{}]*\}|<[^<>]+>|&[#\w]+;")
_SPACE = re.compile(r"\s+")


def has_text(message: str) -> bool:
    """False when nothing but placeholders, markup, digits, punctuation or space is left."""
    rest = _PLACEHOLDER.sub(" ", message)
    return any(unicodedata.category(c).startswith("L") for c in rest)


def one_line(message: str) -> str:
    return _SPACE.sub(" ", message).strip()


def n_plurals(catalog: polib.MOFile) -> int | None:
    match = re.search(r"nplurals\s*=\s*(\d+)", catalog.metadata.get("Plural-Forms", ""))
    return int(match.group(1)) if match else None


def catalog_pairs(catalog: polib.MOFile) -> list[tuple[str, str]]:
    """(source, translation) pairs of one catalog, before filtering (untranslated ones dropped)."""
    pairs = []
    plurals = n_plurals(catalog)
    for entry in catalog:
        if not entry.msgid:  # the header
            continue
        if entry.msgid_plural:
            forms = entry.msgstr_plural
            pairs.append((entry.msgid, forms.get(0, "")))
            if plurals == 2:
                pairs.append((entry.msgid_plural, forms.get(1, "")))
        else:
            pairs.append((entry.msgid, entry.msgstr))
    return [(one_line(s), one_line(t)) for s, t in pairs if t.strip() and one_line(t) != one_line(s)]


def find_catalogs(locale_dir: Path, lang: str) -> list[Path]:
    directory = Path(locale_dir) / lang / "LC_MESSAGES"
    found = sorted(directory.glob("*.mo")) if directory.is_dir() else []
    if not found:
        available = sorted(p.parent.parent.name for p in Path(locale_dir).glob("*/LC_MESSAGES/*.mo"))
        raise FileNotFoundError(
            f"no gettext catalogs for target_lang {lang!r}: {directory} has no *.mo file; languages "
            f"with catalogs under {locale_dir}: {', '.join(sorted(set(available))) or 'none'}")
    return found


def split_of(source: str, valid_fraction: float, test_fraction: float) -> str:
    """A deterministic split from a hash of the source text alone."""
    u = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") / 2 ** 64
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"


def sha256_lines(lines: list[str]) -> str:
    return hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()


def check_mo(path: Path) -> None:
    """Checks that a .mo file's header and both string tables lie inside the file, each string
    followed by its NUL, as msgfmt writes them. Written by hand because polib checks none of this:
    it reads a truncated catalog without a word (cutting the last messages short) or fails with a
    bare struct.error that names no file."""
    data = Path(path).read_bytes()
    if len(data) < 20:
        raise ValueError(f"gettext catalog {path} is truncated: {len(data)} bytes, less than a .mo header")
    order = {0x950412DE: "<", 0xDE120495: ">"}.get(struct.unpack_from("<I", data)[0])
    if order is None:
        raise ValueError(f"{path} is not a gettext catalog: its first 4 bytes {data[:4].hex()} are no .mo magic number")
    count, *tables = struct.unpack_from(order + "3I", data, 8)
    for table in tables:
        if table + 8 * count > len(data):
            raise ValueError(f"gettext catalog {path} is truncated or damaged: its table of {count:,} messages "
                             f"ends at byte {table + 8 * count:,} of {len(data):,}")
        for index in range(count):
            length, offset = struct.unpack_from(order + "2I", data, table + 8 * index)
            if offset + length >= len(data) or data[offset + length] != 0:
                raise ValueError(f"gettext catalog {path} is truncated or damaged: message {index} "
                                 f"(bytes {offset:,}-{offset + length:,}) does not end inside the file's "
                                 f"{len(data):,} bytes with a NUL")


def build_pairs(catalogs: list[Path], min_words: int = 1, max_words: int = 50) -> tuple[list[tuple[str, str]], dict]:
    """Filtered, de-duplicated pairs from the catalogs, and counts of what each filter dropped."""
    counts = Counter()
    seen: dict[str, str] = {}
    for path in catalogs:
        check_mo(path)
        try:
            catalog = polib.mofile(str(path))
        except (OSError, ValueError, struct.error) as error:
            raise ValueError(f"cannot read gettext catalog {path}: {error}") from error
        for source, target in catalog_pairs(catalog):
            counts["pairs"] += 1
            if not (has_text(source) and has_text(target)):
                counts["dropped_placeholder_or_markup_only"] += 1
            elif not min_words <= len(source.split()) <= max_words:
                counts["dropped_length"] += 1
            elif source in seen:
                counts["dropped_duplicate_source"] += 1
            else:
                seen[source] = target
    counts["kept"] = len(seen)
    return list(seen.items()), dict(counts)


def split_pairs(pairs: list[tuple[str, str]], valid_fraction: float, test_fraction: float) -> dict:
    splits = {name: [] for name in SPLITS}
    for source, target in pairs:
        splits[split_of(source, valid_fraction, test_fraction)].append((source, target))
    return splits


def prepare_catalogs(out: Path, target_lang: str, locale_dir: Path = Path("/usr/share/locale"),
                     valid_fraction: float = 0.02, test_fraction: float = 0.03, min_words: int = 1,
                     max_words: int = 50, vocab_size: int = 4000, workers: int = 1, seed: int = 1) -> dict:
    """Builds the corpus and runs the pipeline; returns the catalogs manifest."""
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise ValueError(f"{name} must be in (0, 0.5), got {value}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got min_words={min_words}, max_words={max_words}")
    catalogs = find_catalogs(locale_dir, target_lang)
    pairs, counts = build_pairs(catalogs, min_words, max_words)
    splits = split_pairs(pairs, valid_fraction, test_fraction)
    for name, rows in splits.items():
        if not rows:
            raise ValueError(f"the {target_lang!r} catalogs give no {name} pair ({counts['kept']} pairs "
                             f"kept in all): too few catalogs for a corpus")
    files = [{"catalog": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in catalogs]
    digest = hashlib.sha256(json.dumps([files, min_words, max_words, valid_fraction, test_fraction]).encode()).hexdigest()
    manifest = {
        "locale_dir": str(locale_dir), "source_lang": SOURCE_LANG, "target_lang": target_lang,
        "catalogs": files, "catalog_digest": digest, "counts": counts,
        "filters": {"min_words": min_words, "max_words": max_words},
        "split": {"rule": "sha256(source)[:8] / 2**64 < test_fraction -> test, < test+valid -> valid, else train",
                  "valid_fraction": valid_fraction, "test_fraction": test_fraction},
        "splits": {name: {"pairs": len(rows),
                          "sha256_source": sha256_lines([s for s, _ in rows]),
                          "sha256_target": sha256_lines([t for _, t in rows])}
                   for name, rows in splits.items()},
    }
    config = own.make_config(SOURCE_LANG, target_lang, 1, corpus=f"catalogs-{target_lang}-{digest[:16]}",
                             vocab_size=vocab_size, seed=seed)
    config.test_sets = {"test": f"gettext catalogs {target_lang} (hash split {test_fraction})"}

    def write_raw(tmp: Path) -> None:
        for name, rows in splits.items():
            atomic_write_lines(tmp / f"{name}.{SOURCE_LANG}", [s for s, _ in rows])
            atomic_write_lines(tmp / f"{name}.{target_lang}", [t for _, t in rows])
        log(f"{len(catalogs)} catalogs of {target_lang!r}: {counts}; splits "
            + ", ".join(f"{k} {len(v):,}" for k, v in splits.items()))

    # The catalogs and the split options are the raw stage's inputs: a change to either rebuilds it.
    prepared = run_pipeline(out, config, write_raw, inputs=catalogs, workers=workers,
                            options={"filters": manifest["filters"], "split": manifest["split"]})
    manifest["prepared"] = {"sizes_binarized": prepared["sizes_binarized"], "corpus": config.corpus}
    write_json(Path(out) / MANIFEST, manifest, indent=1, suffix=TMP_SUFFIX)
    return manifest


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target-lang", required=True, help="a locale directory name: fr, es, de, pt_BR, ...")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--locale-dir", type=Path, default=Path("/usr/share/locale"))
    parser.add_argument("--valid-fraction", type=float, default=0.02)
    parser.add_argument("--test-fraction", type=float, default=0.03)
    parser.add_argument("--min-words", type=int, default=1, help="shortest source, in words")
    parser.add_argument("--max-words", type=int, default=50, help="longest source, in words")
    add_common_args(parser, vocab_size=4000, workers=1)
    args = parser.parse_args(argv)
    manifest = prepare_catalogs(args.out, args.target_lang, args.locale_dir, args.valid_fraction,
                                args.test_fraction, args.min_words, args.max_words, args.vocab_size,
                                args.workers, args.seed)
    log(f"manifest: {Path(args.out) / MANIFEST}")
    return manifest


if __name__ == "__main__":
    main()
