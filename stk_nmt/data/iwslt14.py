"""Prepare IWSLT2014 de-en exactly as fairseq's examples/translation/prepare-iwslt14.sh splits it.

Train: train.tags.de-en.{de,en} without the <url>/<talkid>/<keywords> lines and with the
<title>/<description> tags stripped; Moses tokenisation, length cleaning (1-175 tokens, ratio
1.5), lowercasing; valid = every 23rd cleaned training pair. Test = the <seg> lines of dev2010,
TEDX.dev2012, tst2010, tst2011, tst2012. Expected sizes 160,239 / 7,283 / 6,750. Subwords: a
joint sentencepiece BPE of about 10k pieces (fairseq used 10k subword-nmt merges).

    python -m stk_nmt.data.iwslt14 --out data/iwslt14.de-en [--archive path/to/de-en.tgz]
"""

from __future__ import annotations

import argparse
import re
import tarfile
from pathlib import Path

from .download import Archive, check_tar, obtain
from .io import atomic_write_lines
from .pipeline import PrepareConfig, add_common_args, log, run_pipeline

ARCHIVE = Archive("de-en.tgz", "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz")
TRAIN_FILE = "train.tags.de-en.{lang}"
TEST_FILES = [f"IWSLT14.{name}.de-en.{{lang}}.xml" for name in
              ("TED.dev2010", "TEDX.dev2012", "TED.tst2010", "TED.tst2011", "TED.tst2012")]
EXPECTED_SIZES = {"train": 160_239, "valid": 7_283, "test": 6_750}
PAIRS = {("de", "en"), ("en", "de")}

_DROP = ("<url>", "<talkid>", "<keywords>")
_STRIP = re.compile(r"</?(title|description)>")
_SEG = re.compile(r'<seg id="[0-9]*">\s*(.*?)\s*</seg>\s*$')


def train_lines(text: str) -> list[str]:
    """The train.tags filtering of prepare-iwslt14.sh (grep -v the metadata lines, sed the tags)."""
    return [_STRIP.sub("", line) for line in text.splitlines() if not any(tag in line for tag in _DROP)]


def seg_lines(text: str) -> list[str]:
    """The <seg id=...> contents of an IWSLT XML file, with ’ replaced by ' as the recipe does."""
    out = []
    for line in text.splitlines():
        if "<seg id" in line:
            match = _SEG.search(line)
            if match is None:
                raise ValueError(f"malformed <seg> line: {line[:200]!r}")
            out.append(match.group(1).replace("\u2019", "'"))
    return out


def read_members(archive: Path) -> dict[str, str]:
    """Text of the archive's files by base name (the official archive nests them in de-en/)."""
    wanted = {TRAIN_FILE.format(lang=lang) for lang in ("de", "en")}
    wanted |= {name.format(lang=lang) for name in TEST_FILES for lang in ("de", "en")}
    found: dict[str, str] = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            base = Path(member.name).name
            if member.isfile() and base in wanted:
                found[base] = tar.extractfile(member).read().decode("utf-8")
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"archive {archive} lacks {', '.join(missing)}: is it the IWSLT14 de-en.tgz?")
    return found


def raw_writer(archive: Path, source_lang: str, target_lang: str):
    def write_raw(tmp: Path) -> None:
        check_tar(archive)
        files = read_members(archive)
        for lang in (source_lang, target_lang):
            atomic_write_lines(tmp / f"train.{lang}", train_lines(files[TRAIN_FILE.format(lang=lang)]))
            test = [line for name in TEST_FILES for line in seg_lines(files[name.format(lang=lang)])]
            atomic_write_lines(tmp / f"test.{lang}", test)
    return write_raw


def make_config(source_lang: str = "de", target_lang: str = "en", vocab_size: int = 10_000,
                seed: int = 1) -> PrepareConfig:
    if (source_lang, target_lang) not in PAIRS:
        raise ValueError(f"IWSLT14 has de-en (or en-de), not {source_lang}-{target_lang}")
    return PrepareConfig(
        corpus="iwslt14", source_lang=source_lang, target_lang=target_lang,
        test_sets={"test": "dev2010+TEDX.dev2012+tst2010+tst2011+tst2012"},
        tokenizer="moses", lowercase=True, clean_on="words", clean_min=1, clean_max=175,
        clean_ratio=1.5, valid_every=23, vocab_size=vocab_size, spm_model_type="bpe", seed=seed,
        expected_sizes=EXPECTED_SIZES)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Prepare IWSLT2014 de-en into a fairseq data-bin.")
    parser.add_argument("--out", type=Path, required=True, help="output directory (see docs/translation.md)")
    parser.add_argument("--archive", type=Path, help="an already-downloaded de-en.tgz (offline machines)")
    parser.add_argument("--download-dir", type=Path, default=Path("downloads"))
    parser.add_argument("--source-lang", default="de")
    parser.add_argument("--target-lang", default="en")
    add_common_args(parser, vocab_size=10_000)
    parser.add_argument("--strict-sizes", action="store_true",
                        help="fail when the split sizes differ from 160,239 / 7,283 / 6,750 "
                             "(the default for an archive this script downloaded)")
    args = parser.parse_args(argv)
    config = make_config(args.source_lang, args.target_lang, args.vocab_size, args.seed)
    log(f"IWSLT14 {args.source_lang}-{args.target_lang}, seed {args.seed}")
    archive = obtain(ARCHIVE, args.archive, args.download_dir)
    strict = args.strict_sizes or args.archive is None
    return run_pipeline(args.out, config, raw_writer(archive, args.source_lang, args.target_lang), [archive],
                        workers=args.workers, strict_sizes=strict)


if __name__ == "__main__":
    main()
