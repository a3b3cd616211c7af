"""Prepare WMT2017 en-de or zh-en (constrained data) into a fairseq data-bin.

en-de: Europarl v7, Common Crawl, News Commentary v12, Rapid 2016; valid newstest2015; test
       newstest2017 (fairseq subset "test") and newstest2016 (subset "test1", what the STk paper
       reports). Neither test set is used for validation, so checkpoint_best.pt and early stopping
       never see them.
zh-en: News Commentary v12, UN Parallel Corpus v1.0, CWMT; valid newsdev2017; test newstest2017.

Pipeline: Moses punctuation normalisation (not on Chinese), no word tokenisation, a joint
sentencepiece BPE of 32k pieces (character_coverage 0.9995 for Chinese, 1.0 otherwise), length
cleaning of the training pairs on subwords (1-250 pieces, ratio 1.5; 2.0 for zh-en, where
Chinese and English subword counts differ more), fairseq-preprocess --joined-dictionary.
References are the raw <seg> texts of the SGML files, extracted as sacrebleu does.

    python -m stk_nmt.data.wmt17 --pair en-de --out data/wmt17.en-de --archives-dir downloads/
"""

from __future__ import annotations

import argparse
import re
import tarfile
from pathlib import Path

from .download import Archive, check_tar, obtain
from .io import atomic_write_lines, read_parallel
from .pipeline import PrepareConfig, add_common_args, log, run_pipeline

_WMT17 = "http://data.statmt.org/wmt17/translation-task"
ARCHIVES = {
    "europarl": Archive("training-parallel-europarl-v7.tgz",
                        "http://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz"),
    "commoncrawl": Archive("training-parallel-commoncrawl.tgz",
                           "http://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz"),
    "news-commentary": Archive("training-parallel-nc-v12.tgz", f"{_WMT17}/training-parallel-nc-v12.tgz"),
    "rapid": Archive("rapid2016.tgz", f"{_WMT17}/rapid2016.tgz"),
    "un": Archive("UNv1.0.en-zh.tar.gz", None,
                  note="the UN corpus needs a download by hand from conferences.unite.un.org/uncorpus; "
                       "join its parts with `cat UNv1.0.en-zh.tar.gz.0* > UNv1.0.en-zh.tar.gz`"),
    "dev": Archive("dev.tgz", f"{_WMT17}/dev.tgz"),
    "test": Archive("test.tgz", f"{_WMT17}/test.tgz"),
}

# pair -> training corpora as (archive key, file name pattern with {lang}).
TRAIN_FILES = {
    "en-de": [("europarl", "europarl-v7.de-en.{lang}"), ("commoncrawl", "commoncrawl.de-en.{lang}"),
              ("news-commentary", "news-commentary-v12.de-en.{lang}"), ("rapid", "rapid2016.de-en.{lang}")],
    "zh-en": [("news-commentary", "news-commentary-v12.zh-en.{lang}"), ("un", "UNv1.0.en-zh.{lang}")],
}
# pair -> fairseq subset -> (archive key, test set, source sgm, reference sgm).
EVAL_FILES = {
    "en-de": {
        "valid": ("dev", "newstest2015", "newstest2015-ende-src.en.sgm", "newstest2015-ende-ref.de.sgm"),
        "test": ("test", "newstest2017", "newstest2017-ende-src.en.sgm", "newstest2017-ende-ref.de.sgm"),
        "test1": ("dev", "newstest2016", "newstest2016-ende-src.en.sgm", "newstest2016-ende-ref.de.sgm"),
    },
    "zh-en": {
        "valid": ("dev", "newsdev2017", "newsdev2017-zhen-src.zh.sgm", "newsdev2017-zhen-ref.en.sgm"),
        "test": ("test", "newstest2017", "newstest2017-zhen-src.zh.sgm", "newstest2017-zhen-ref.en.sgm"),
    },
}

_SEG = re.compile(r"<seg[^>]*>(.*)</seg>")


def sgm_segments(text: str) -> list[str]:
    """The <seg> texts of a WMT SGML file, whitespace-collapsed like sacrebleu's extraction."""
    return [" ".join(match.group(1).split()) for line in text.splitlines()
            if line.startswith("<seg ") and (match := _SEG.search(line))]


def _members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    found = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            base = Path(member.name).name
            if member.isfile() and base in wanted:
                found[base] = tar.extractfile(member).read()
    return found


def _decode_lines(data: bytes, name: str) -> list[str]:
    # Common Crawl and UN contain stray carriage returns / form feeds: split on "\n" only so
    # the two sides stay line-aligned.
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.replace("\r", " ").replace("\x0c", " ") for line in lines]


def raw_writer(pair: str, archives: dict[str, Path], extra_train: list[tuple[Path, Path]]):
    source_lang, target_lang = pair.split("-")

    def write_raw(tmp: Path) -> None:
        train = {source_lang: [], target_lang: []}
        for key, pattern in TRAIN_FILES[pair]:
            names = {lang: pattern.format(lang=lang) for lang in train}
            log(f"reading {', '.join(names.values())} from {archives[key]}")
            check_tar(archives[key])
            found = _members(archives[key], set(names.values()))
            missing = [n for n in names.values() if n not in found]
            if missing:
                raise ValueError(f"archive {archives[key]} lacks {', '.join(missing)}")
            sides = {lang: _decode_lines(found[name], name) for lang, name in names.items()}
            if len(sides[source_lang]) != len(sides[target_lang]):
                raise ValueError(f"line counts differ in {archives[key]}: " + ", ".join(
                    f"{names[lang]} {len(lines)}" for lang, lines in sides.items()))
            for lang in train:
                train[lang].extend(sides[lang])
        for source_path, target_path in extra_train:
            log(f"adding {source_path} / {target_path}")
            src, tgt = read_parallel(source_path, target_path)
            train[source_lang].extend(src)
            train[target_lang].extend(tgt)
        for lang, lines in train.items():
            atomic_write_lines(tmp / f"train.{lang}", lines)
        for subset, (key, name, source_sgm, reference_sgm) in EVAL_FILES[pair].items():
            found = _members(archives[key], {source_sgm, reference_sgm})
            missing = [n for n in (source_sgm, reference_sgm) if n not in found]
            if missing:
                raise ValueError(f"archive {archives[key]} lacks {', '.join(missing)} ({name})")
            atomic_write_lines(tmp / f"{subset}.{source_lang}", sgm_segments(found[source_sgm].decode("utf-8")))
            atomic_write_lines(tmp / f"{subset}.{target_lang}", sgm_segments(found[reference_sgm].decode("utf-8")))

    return write_raw


def make_config(pair: str, vocab_size: int = 32_000, seed: int = 1) -> PrepareConfig:
    if pair not in TRAIN_FILES:
        raise ValueError(f"pair must be one of {sorted(TRAIN_FILES)}, got {pair!r}")
    source_lang, target_lang = pair.split("-")
    chinese = "zh" in (source_lang, target_lang)
    return PrepareConfig(
        corpus="wmt17", source_lang=source_lang, target_lang=target_lang,
        test_sets={subset: spec[1] for subset, spec in EVAL_FILES[pair].items() if subset != "valid"},
        tokenizer="none", normalize_punctuation=True, lowercase=False, clean_on="subwords",
        clean_min=1, clean_max=250, clean_ratio=2.0 if chinese else 1.5, vocab_size=vocab_size,
        spm_model_type="bpe", character_coverage=0.9995 if chinese else 1.0, seed=seed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Prepare WMT2017 en-de or zh-en into a fairseq data-bin.")
    parser.add_argument("--pair", required=True, help="en-de or zh-en")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--archives-dir", type=Path,
                        help="a directory with already-downloaded archives under their official names")
    parser.add_argument("--download-dir", type=Path, default=Path("downloads"))
    parser.add_argument("--extra-train", nargs=2, type=Path, action="append", default=[],
                        metavar=("SOURCE_FILE", "TARGET_FILE"),
                        help="more parallel training text, e.g. the CWMT corpora for zh-en (repeatable)")
    add_common_args(parser, vocab_size=32_000)
    args = parser.parse_args(argv)
    config = make_config(args.pair, args.vocab_size, args.seed)
    log(f"WMT17 {args.pair}, seed {args.seed}")
    keys = {key for key, _ in TRAIN_FILES[args.pair]} | {spec[0] for spec in EVAL_FILES[args.pair].values()}
    archives = {}
    for key in sorted(keys):
        # With --archives-dir every archive must be there (offline use); otherwise each is
        # downloaded into --download-dir, or re-used from there once complete.
        local = args.archives_dir / ARCHIVES[key].name if args.archives_dir else None
        archives[key] = obtain(ARCHIVES[key], local, args.download_dir)
    inputs = [*archives.values(), *(path for pair in args.extra_train for path in pair)]
    return run_pipeline(args.out, config, raw_writer(args.pair, archives, args.extra_train), inputs,
                        workers=args.workers)


if __name__ == "__main__":
    main()
