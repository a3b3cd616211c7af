"""The staged road from raw parallel text to a fairseq data-bin, shared by every corpus.

An output directory holds, once prepared:
    raw/      {split}.{lang}   raw text per split, as extracted from the corpus
    tok/      {split}.{lang}   tokenised / lowercased / length-cleaned text (what subwords see)
    tok/ref/  {split}.{lang}   raw text of the kept lines, line-aligned with tok/ (score against these)
    spm/      spm.model        joint sentencepiece model;  {split}.{lang} subword text
    data-bin/                  fairseq-preprocess output (train, valid, test, test1, ...)
    prepared.json              the configuration, split names and sizes (evaluation reads it)

Each stage is built, recorded and checked by stages.py (StagedDir): a re-run skips a stage whose
record matches and whose files are still what it recorded, and rebuilds, saying why, one whose
inputs or settings changed or whose files were damaged. The checks given here are what a stage of
this pipeline must hold before it is recorded: sides that pair, a data-bin that agrees with its
index and dictionary. fairseq-preprocess never outlives the command.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..files import read_json, write_json
from ..processes import run_child
from .databin import check_data_bin
from .io import TMP_SUFFIX, atomic_write_lines, check_no_blank_lines, read_lines, read_parallel
from .stages import STAGE_RECORD, StagedDir, log
from .text import length_filter, moses_process, sentencepiece_encode, train_sentencepiece

CONFIG_FILE = ".stk-prepare.json"
LOCK_FILE = ".stk-prepare.lock"
TOOLS = ("fairseq", "sentencepiece", "sacremoses", "torch")
MANIFEST_FILE = "prepared.json"
STAGES = ("raw", "tok", "spm", "data-bin")


def add_common_args(parser: argparse.ArgumentParser, vocab_size: int, workers: int = 2) -> None:
    """The flags every prepare CLI shares (own, iwslt14, wmt17, catalogs), with its own defaults."""
    parser.add_argument("--vocab-size", type=int, default=vocab_size, help="joint sentencepiece vocabulary")
    parser.add_argument("--workers", type=int, default=workers)
    parser.add_argument("--seed", type=int, default=1)


@dataclass
class PrepareConfig:
    """What a corpus recipe asks of the shared pipeline."""

    corpus: str
    source_lang: str
    target_lang: str
    # fairseq test subsets ("test", "test1", ... in that order; also the split file names) ->
    # the name of the test set each holds, e.g. {"test": "newstest2017", "test1": "newstest2016"}.
    test_sets: dict[str, str] = field(default_factory=lambda: {"test": "test"})
    tokenizer: str = "none"  # "moses" (sacremoses, then detokenise before scoring) or "none"
    normalize_punctuation: bool = False
    lowercase: bool = False
    # Length cleaning of the training pairs: on "words" (after tokenisation), "subwords", or None.
    clean_on: str | None = None
    clean_min: int = 1
    clean_max: int = 175
    clean_ratio: float = 1.5
    valid_every: int = 0  # > 0: valid = every n-th cleaned training pair (IWSLT14 recipe)
    vocab_size: int = 10_000
    spm_model_type: str = "bpe"
    character_coverage: float = 1.0
    seed: int = 1
    expected_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.tokenizer not in ("moses", "none"):
            raise ValueError(f"tokenizer must be 'moses' or 'none', got {self.tokenizer!r}")
        if self.clean_on not in (None, "words", "subwords"):
            raise ValueError(f"clean_on must be None, 'words' or 'subwords', got {self.clean_on!r}")
        if self.valid_every < 0:
            raise ValueError(f"valid_every must be >= 0, got {self.valid_every}")
        subsets = ["test"] + [f"test{i}" for i in range(1, len(self.test_sets))]
        if list(self.test_sets) != subsets:
            raise ValueError(f"test_sets keys must be {subsets} in order, got {list(self.test_sets)}")
        if self.source_lang == self.target_lang:
            raise ValueError(f"source and target language are both {self.source_lang!r}")

    @property
    def langs(self) -> tuple[str, str]:
        return self.source_lang, self.target_lang

    @property
    def splits(self) -> list[str]:
        return ["train", "valid", *self.test_sets]


# Settings a stage does not read, left out of its record so that changing one (say --vocab-size)
# rebuilds only the stages it shapes: raw/ and tok/ of a large corpus take hours. A stage's
# inputs are the previous stage's files, so a change upstream still reaches every later stage.
_SUBWORDS = {"vocab_size", "spm_model_type", "character_coverage"}
_TEXT = {"tokenizer", "normalize_punctuation", "lowercase", "clean_on", "clean_min", "clean_max",
         "clean_ratio", "valid_every"}
NOT_SHAPING = {"raw": _SUBWORDS | _TEXT | {"expected_sizes"}, "tok": _SUBWORDS | {"seed", "expected_sizes"}}


class PreparedDir(StagedDir):
    """A prepare command's output directory: the stages of a translation corpus (raw/, tok/, spm/,
    data-bin/) and their records (stages.py)."""

    STAGES = STAGES
    TOOLS = TOOLS
    NOT_SHAPING = NOT_SHAPING
    CONFIG_FILE = CONFIG_FILE
    LOCK_FILE = LOCK_FILE
    LOCK_PURPOSE = "preparing a corpus"


def check_pairs(prep: PreparedDir, directory: Path, splits: list[str]) -> None:
    """Every split's two sides (and in tok/ the reference text of the kept lines) have the same
    number of lines: a stage never hands on files that no longer pair."""
    for split in splits:
        paths = [directory / folder / f"{split}.{lang}" for folder in ("", "ref")
                 for lang in prep.config.langs if (directory / folder).is_dir()]
        counts = {path: prep.facts(path)["lines"] for path in paths}
        if len(set(counts.values())) > 1:
            raise ValueError("files that must pair have different line counts: " + ", ".join(
                f"{path} {count:,}" for path, count in counts.items()))


def _tokenize_stage(prep: PreparedDir, workers: int) -> Callable[[Path], None]:
    config = prep.config

    def process(lines: list[str], lang: str, split: str) -> list[str]:
        # Moses' punctuation rules are for alphabetic scripts: Chinese/Japanese are left as they are.
        normalize = config.normalize_punctuation and lang not in ("zh", "ja")
        if normalize or config.tokenizer == "moses":
            return moses_process(lines, lang, normalize=normalize, tokenize=config.tokenizer == "moses",
                                 lowercase=config.lowercase, workers=workers, desc=split)
        return [line.strip().lower() if config.lowercase else line.strip() for line in lines]

    def build(tmp: Path) -> None:
        raw = prep.stage("raw")
        (tmp / "ref").mkdir()
        raw_splits = ["train", *config.test_sets] if config.valid_every else config.splits
        for split in raw_splits:
            src_raw, tgt_raw = read_parallel(raw / f"{split}.{config.source_lang}",
                                             raw / f"{split}.{config.target_lang}")
            src_tok = process(src_raw, config.source_lang, split)
            tgt_tok = process(tgt_raw, config.target_lang, split)
            if split == "train" and config.clean_on == "words":
                keep = length_filter(src_tok, tgt_tok, config.clean_min, config.clean_max, config.clean_ratio)
            else:  # dev/test sets are neither length-filtered nor shortened: scored whole
                check_no_blank_lines(src_tok, tgt_tok, raw / f"{split}.{config.source_lang}",
                                     raw / f"{split}.{config.target_lang}")
                keep = list(range(len(src_tok)))
            parts = {split: keep}
            if split == "train" and config.valid_every:
                # Positions counted 1-based over the cleaned corpus, like awk's NR % 23.
                parts = {"valid": [i for n, i in enumerate(keep, 1) if n % config.valid_every == 0],
                         "train": [i for n, i in enumerate(keep, 1) if n % config.valid_every != 0]}
            for name, indices in parts.items():
                if not indices:
                    raise ValueError(f"empty corpus: no {name} pair of {raw} is left after cleaning")
                for lang, tok, raw_lines in ((config.source_lang, src_tok, src_raw),
                                             (config.target_lang, tgt_tok, tgt_raw)):
                    atomic_write_lines(tmp / f"{name}.{lang}", [tok[i] for i in indices])
                    # The raw text of the kept lines: what detokenised hypotheses are scored against.
                    atomic_write_lines(tmp / "ref" / f"{name}.{lang}", [raw_lines[i].strip() for i in indices])

    return build


def _spm_stage(prep: PreparedDir) -> Callable[[Path], None]:
    config = prep.config

    def build(tmp: Path) -> None:
        tok = prep.stage("tok")
        model = train_sentencepiece(
            [tok / f"train.{lang}" for lang in config.langs], tmp / "spm", config.vocab_size,
            model_type=config.spm_model_type, character_coverage=config.character_coverage,
            seed=config.seed)
        for split in config.splits:
            pair = read_parallel(*(tok / f"{split}.{lang}" for lang in config.langs))
            encoded = {lang: sentencepiece_encode(model, lines, desc=f"spm {split}.{lang}")
                       for lang, lines in zip(config.langs, pair)}
            if split == "train" and config.clean_on == "subwords":
                keep = length_filter(encoded[config.source_lang], encoded[config.target_lang],
                                     config.clean_min, config.clean_max, config.clean_ratio)
                encoded = {lang: [lines[i] for i in keep] for lang, lines in encoded.items()}
            for lang, lines in encoded.items():
                atomic_write_lines(tmp / f"{split}.{lang}", lines)

    return build


def _binarize_stage(prep: PreparedDir, workers: int) -> Callable[[Path], None]:
    config = prep.config

    def build(tmp: Path) -> None:
        sp = prep.stage("spm")
        # fairseq-preprocess splits --validpref and --testpref on commas: it runs inside spm/
        # and is given bare split names, so a comma in --out cannot break the list.
        command = [
            sys.executable, "-m", "fairseq_cli.preprocess",
            "--source-lang", config.source_lang, "--target-lang", config.target_lang,
            "--trainpref", "train", "--validpref", "valid", "--testpref", ",".join(config.test_sets),
            "--destdir", str(tmp.resolve()), "--joined-dictionary", "--workers", str(workers),
        ]
        log(f"in {sp}: " + " ".join(command))
        returncode, _, stderr = run_child(command, merge_stderr=False, pass_fds=(prep.lock,), cwd=sp)
        if returncode != 0:
            raise RuntimeError(f"fairseq-preprocess failed ({returncode}):\n{stderr[-3000:]}")

    return build


def count_sizes(prep: PreparedDir, stage: str) -> dict[str, int]:
    directory = prep.stage(stage)
    return {split: len(read_lines(directory / f"{split}.{prep.config.source_lang}"))
            for split in prep.config.splits}


def check_sizes(sizes: dict[str, int], expected: dict[str, int], strict: bool) -> list[str]:
    """Compares split sizes with the published ones; returns the mismatches (raises when strict)."""
    mismatches = [f"{split}: {sizes.get(split)} lines, expected {n}"
                  for split, n in expected.items() if sizes.get(split) != n]
    if mismatches and strict:
        raise ValueError("prepared sizes differ from the official ones: " + "; ".join(mismatches))
    return mismatches


def run_pipeline(out_dir: Path, config: PrepareConfig, write_raw: Callable[[Path], None],
                 inputs: list[Path], workers: int = 1, strict_sizes: bool = False,
                 options: dict | None = None) -> dict:
    """Runs (or resumes) every stage; write_raw(tmp_dir) fills raw/ with {split}.{lang} files
    from the files in inputs (the corpus files or archives) and the recipe's options (e.g. sizes
    of a generated corpus): a change to either rebuilds.

    Returns the manifest written to prepared.json."""
    prep = PreparedDir(out_dir, config)
    try:
        prep.claim()
        return _run_stages(prep, write_raw, [Path(p) for p in inputs], options, workers, strict_sizes)
    finally:
        if prep.lock is not None:
            os.close(prep.lock)
            prep.lock = None


def _run_stages(prep: PreparedDir, write_raw: Callable[[Path], None], inputs: list[Path],
                options: dict | None, workers: int, strict_sizes: bool) -> dict:
    config = prep.config
    prep.build("raw", write_raw, inputs, options)
    prep.build("tok", _tokenize_stage(prep, workers), prep.stage_files("raw"),
               check=lambda tmp: check_pairs(prep, tmp, config.splits))
    sizes = count_sizes(prep, "tok")
    expected = {k: v for k, v in config.expected_sizes.items() if k in sizes}
    log("sizes before subwords: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    if expected:
        mismatches = check_sizes(sizes, expected, strict_sizes)
        if mismatches:
            log("note: sizes differ from the official corpus (" + "; ".join(mismatches) + ")")
        else:
            log("sizes match the official corpus: " + ", ".join(f"{k} {v:,}" for k, v in expected.items()))
    prep.build("spm", _spm_stage(prep), prep.stage_files("tok"),
               check=lambda tmp: check_pairs(prep, tmp, config.splits))
    prep.build("data-bin", _binarize_stage(prep, workers), prep.stage_files("spm"),
               check=lambda tmp: check_data_bin(tmp, config.source_lang, config.target_lang, {
                   split: prep.facts(prep.stage("spm") / f"{split}.{config.source_lang}")["lines"]
                   for split in config.splits}))
    manifest = {
        "config": asdict(config),
        "sizes_before_subwords": sizes,
        "sizes_binarized": count_sizes(prep, "spm"),
        "test_sets": config.test_sets,
        "references": "tok/ref",
        "data_bin": "data-bin",
        "spm_model": "spm/spm.model",
    }
    write_json(prep.root / MANIFEST_FILE, manifest, indent=1, suffix=TMP_SUFFIX)
    log(f"done: {prep.root / 'data-bin'} " + ", ".join(
        f"{k} {v:,}" for k, v in manifest["sizes_binarized"].items()))
    return manifest


def load_manifest(prepared_dir: Path) -> dict:
    path = Path(prepared_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {prepared_dir} a directory made by a prepare script?")
    return read_json(path)


def check_prepared(prepared_dir: Path, stages: tuple[str, ...] = ("data-bin",)) -> None:
    """Checks, without rebuilding anything, that the files of the given stages of a prepared
    directory are still what their records list: for a command that reads a data-bin (training,
    evaluation) and must not read a damaged one. Raises ValueError naming the file and what to do."""
    prep = PreparedDir(Path(prepared_dir), None)
    for name in stages:
        record_path = prep.stage(name) / STAGE_RECORD
        if not record_path.is_file():
            raise FileNotFoundError(f"{record_path} not found: is {prepared_dir} a directory made by a "
                                    f"prepare command? Run that command again")
        found = read_json(record_path)
        problems = prep.output_problems(name, found.get("outputs") or {}) if isinstance(found, dict) else []
        if not isinstance(found, dict) or not isinstance(found.get("outputs"), dict):
            problems = [f"{record_path} lists no files (written by an earlier version of the prepare commands)"]
        if problems:
            raise ValueError(f"{prepared_dir} is damaged: " + "; ".join(problems)
                             + ": run the prepare command that made it again, which rebuilds it")
