"""Prepare your own parallel text files (one sentence a line, line-aligned) into a fairseq data-bin.

    python -m stk_nmt.data.own --source-lang fr --target-lang en --out data/my-fr-en \
        --train corpus/train --valid corpus/dev --test corpus/test [corpus/test2 ...]

reads corpus/train.fr + corpus/train.en etc. The default is the modern recipe (raw text straight
into a joint sentencepiece model); --moses adds Moses tokenisation and --lowercase lowercasing
(the hypotheses are detokenised again before scoring). Every test prefix becomes a fairseq subset
test, test1, ... in the order given.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .io import check_no_blank_lines, read_parallel
from .pipeline import PrepareConfig, add_common_args, log, run_pipeline


def raw_writer(prefixes: dict[str, Path], source_lang: str, target_lang: str):
    """Checks each split's two files (present, UTF-8, same line count, not empty, no blank line in
    an evaluation set); returns the writer
    that copies them, and the files."""
    files = {split: (Path(f"{prefix}.{source_lang}"), Path(f"{prefix}.{target_lang}"))
             for split, prefix in prefixes.items()}
    for split, (source_path, target_path) in files.items():  # fail before any work is done
        source, target = read_parallel(source_path, target_path)
        if split != "train":  # training pairs with a blank side are dropped by cleaning
            check_no_blank_lines(source, target, source_path, target_path)

    def write_raw(tmp: Path) -> None:
        for split, (source_path, target_path) in files.items():
            shutil.copyfile(source_path, tmp / f"{split}.{source_lang}")
            shutil.copyfile(target_path, tmp / f"{split}.{target_lang}")

    return write_raw, [path for pair in files.values() for path in pair]


def make_config(source_lang: str, target_lang: str, n_tests: int, corpus: str = "own",
                moses: bool = False, lowercase: bool = False, vocab_size: int = 8000,
                character_coverage: float = 1.0, clean: bool = True, seed: int = 1) -> PrepareConfig:
    for name, lang in (("source_lang", source_lang), ("target_lang", target_lang)):
        if not lang or not lang.replace("_", "").isalnum():
            raise ValueError(f"{name} must be a short language code such as 'de', got {lang!r}")
    return PrepareConfig(
        corpus=corpus, source_lang=source_lang, target_lang=target_lang,
        test_sets={("test" if i == 0 else f"test{i}"): f"test prefix {i + 1}" for i in range(n_tests)},
        tokenizer="moses" if moses else "none", lowercase=lowercase,
        clean_on=("words" if moses else "subwords") if clean else None, clean_min=1, clean_max=250,
        clean_ratio=2.0, vocab_size=vocab_size, spm_model_type="bpe",
        character_coverage=character_coverage, seed=seed)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Prepare your own parallel text into a fairseq data-bin.")
    parser.add_argument("--source-lang", required=True)
    parser.add_argument("--target-lang", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="prefix: PREFIX.SRC and PREFIX.TGT")
    parser.add_argument("--valid", type=Path, required=True, help="prefix of the validation files")
    parser.add_argument("--test", type=Path, nargs="+", required=True, help="prefix(es) of test files")
    parser.add_argument("--moses", action="store_true", help="Moses-tokenise before subwords")
    parser.add_argument("--lowercase", action="store_true", help="lowercase (scoring is then -lc)")
    parser.add_argument("--no-clean", action="store_true", help="keep every training pair")
    parser.add_argument("--character-coverage", type=float, default=1.0,
                        help="sentencepiece character coverage (0.9995 for Chinese/Japanese)")
    add_common_args(parser, vocab_size=8000)
    args = parser.parse_args(argv)
    config = make_config(args.source_lang, args.target_lang, len(args.test), moses=args.moses,
                         lowercase=args.lowercase, vocab_size=args.vocab_size,
                         character_coverage=args.character_coverage, clean=not args.no_clean, seed=args.seed)
    prefixes = {"train": args.train, "valid": args.valid}
    prefixes.update({subset: prefix for subset, prefix in zip(config.test_sets, args.test)})
    config.test_sets = {subset: str(prefixes[subset]) for subset in config.test_sets}
    write_raw, inputs = raw_writer(prefixes, args.source_lang, args.target_lang)
    log(f"own corpus {args.source_lang}-{args.target_lang}, seed {args.seed}")
    return run_pipeline(args.out, config, write_raw, inputs, workers=args.workers)


if __name__ == "__main__":
    main()
