"""The staged road from raw parallel text to a fairseq data-bin, shared by every corpus.

An output directory holds, once prepared:
    raw/      {split}.{lang}   raw text per split, as extracted from the corpus
    tok/      {split}.{lang}   tokenised / lowercased / length-cleaned text (what subwords see)
    tok/ref/  {split}.{lang}   raw text of the kept lines, line-aligned with tok/ (score against these)
    spm/      spm.model        joint sentencepiece model;  {split}.{lang} subword text
    data-bin/                  fairseq-preprocess output (train, valid, test, test1, ...)
    prepared.json              the configuration, split names and sizes (evaluation reads it)

Each stage is built in `<stage>.stk-tmp` and renamed when complete, with `<stage>/.stk-stage.json`
recording what it was built from (the settings that shape it, the tool versions, and the size and
SHA-256 of every input file: the corpus files or archives for raw/, the previous stage's files
after that) and what it holds (size, line count and SHA-256 of every file it wrote, checked before
they are recorded: sides that pair, a data-bin that agrees with its index and dictionary). A
re-run skips a stage whose record matches and whose files are still what it recorded; it rebuilds
one whose inputs or settings changed, whose files were damaged, whose record is unreadable, or
that was half-written, saying why, so a damaged file never becomes the next stage's input. It
never touches files it did not make. A directory that already holds other files is refused; one
that another prepare run is using too. Settings that differ from the last run's are printed and
rebuild what they shape. fairseq-preprocess never outlives the command.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from importlib import metadata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..files import lock_folder, read_json, write_json
from ..processes import hold_point, run_child
from .io import TMP_SUFFIX, atomic_write_lines, check_no_blank_lines, atomic_write_text, read_lines, read_parallel, remove_own_tmp
from .databin import check_data_bin
from .text import length_filter, moses_process, sentencepiece_encode, train_sentencepiece

CONFIG_FILE = ".stk-prepare.json"
STAGE_RECORD = ".stk-stage.json"
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


def log(message: str) -> None:
    print(f"[prepare {time.strftime('%H:%M:%S')}] {message}", flush=True)


class PreparedDir:
    """An output directory of the pipeline, with its stage bookkeeping."""

    def __init__(self, root: Path, config: PrepareConfig):
        self.root = Path(root)
        self.config = config
        self.lock: int | None = None
        self._facts: dict[tuple, dict] = {}

    def stage(self, name: str) -> Path:
        return self.root / name

    def done(self, name: str) -> bool:
        return self.stage(name).is_dir()

    def claim(self) -> None:
        """Checks the directory is ours (or new) and not in use, and records the configuration.

        Settings that differ from the recorded ones (or a record that cannot be read) are not a
        reason to refuse: they are printed, and each stage's own record then rebuilds what they
        affect. The lock it takes is held until this process (and any child it passes it to) ends."""
        config_path = self.root / CONFIG_FILE
        wanted = json.dumps(asdict(self.config), indent=1, sort_keys=True)
        # Ours: the configuration record, or (when that was deleted) a stage record.
        ours = config_path.is_file() or any((self.root / stage / STAGE_RECORD).is_file() for stage in STAGES)
        if self.root.exists() and not ours and any(p.name != LOCK_FILE for p in self.root.iterdir()):
            raise ValueError(
                f"out_dir {self.root} exists and holds files this pipeline did not make; "
                f"choose an empty or new directory")
        if self.lock is None:
            self.lock = lock_folder(self.root, "preparing a corpus", LOCK_FILE)
        if config_path.is_file():
            text = config_path.read_text(encoding="utf-8", errors="replace")
            if text != wanted:
                try:
                    found = json.loads(text)
                except json.JSONDecodeError:
                    found = None
                if isinstance(found, dict):
                    changes = [f"{key} was {found.get(key)!r}, now {value!r}"
                               for key, value in asdict(self.config).items() if found.get(key) != value]
                    log("settings changed since the last prepare of this directory: "
                        + ("; ".join(changes) or "the record's layout") + "; the stages they affect are rebuilt")
                else:
                    log(f"{config_path} is unreadable ({len(text)} bytes): rewriting it; every stage is "
                        f"checked against its own record")
        elif self.root.exists() and ours:
            log(f"{config_path} is missing: writing it again; every stage is checked against its own record")
        for leftover in self.root.glob(f"*{TMP_SUFFIX}"):
            log(f"removing the half-written {leftover.name} of an interrupted run")
            remove_own_tmp(leftover)
        atomic_write_text(config_path, wanted)

    def record(self, inputs: list[Path], options: dict | None = None, stage: str | None = None) -> dict:
        """What a stage is built from: the settings that shape it, options of the corpus recipe,
        tool versions, each input's size and hash."""
        config = {key: value for key, value in asdict(self.config).items()
                  if key not in NOT_SHAPING.get(stage, ())}
        return {"config": config, "options": dict(options or {}), "tools": tool_versions(),
                "inputs": {self.name(path): {key: value for key, value in self.facts(path).items() if key != "lines"}
                           for path in sorted(inputs)}}

    def facts(self, path: Path) -> dict:
        """Size, line count and SHA-256 of a file, read once per run: a stage's files are hashed
        when recorded or checked, and again as the next stage's inputs. Keyed by inode, size and
        modification time, which the rename of a finished stage keeps."""
        stat = Path(path).stat()
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key not in self._facts:
            self._facts[key] = file_facts(path)
        return self._facts[key]

    def name(self, path: Path) -> str:
        """A path as recorded: relative inside the directory (which may then be moved)."""
        path = Path(path).resolve()
        root = self.root.resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    def build(self, name: str, builder: Callable[[Path], None], inputs: list[Path],
              options: dict | None = None, check: Callable[[Path], None] | None = None) -> None:
        """Runs builder(tmp_dir) unless the stage exists, was built from these inputs (see
        record()) and its files are still the ones it recorded; check(tmp_dir) then verifies what
        the builder wrote (files that pair), the record lists every file written with its size,
        line count and hash, and tmp_dir is renamed into place."""
        stage = self.stage(name)
        wanted = self.record(inputs, options, name)
        if stage.is_dir():
            problems = self.stage_problems(name, wanted)
            if not problems:
                log(f"{name}/ exists, skipping (built from the same inputs)")
                return
            log(f"{name}/ is out of date, rebuilding it: " + "; ".join(problems))
        tmp = self.root / (name + TMP_SUFFIX)
        if tmp.exists():
            remove_own_tmp(tmp)
        tmp.mkdir(parents=True)
        log(f"building {name}/")
        builder(tmp)
        if check is not None:
            check(tmp)
        wanted["outputs"] = {str(path.relative_to(tmp)): self.facts(path)
                             for path in sorted(tmp.rglob("*")) if path.is_file() and path.name != STAGE_RECORD}
        (tmp / STAGE_RECORD).write_text(json.dumps(wanted, indent=1, sort_keys=True), encoding="utf-8")
        hold_point(f"stage:{name}")
        if stage.exists():
            # The outdated stage goes aside under a temporary name first: a kill in between
            # leaves only pipeline temporaries, which the next run clears.
            old = self.root / (name + ".old" + TMP_SUFFIX)
            os.replace(stage, old)
            os.replace(tmp, stage)
            remove_own_tmp(old)
        else:
            os.replace(tmp, stage)

    def stage_problems(self, name: str, wanted: dict) -> list[str]:
        """Why a finished stage cannot be kept: a missing, unreadable or incomplete record (a
        stage is then rebuilt, never refused), other inputs or settings, or files that are no
        longer what the record lists. Empty when the stage can be kept."""
        record_path = self.stage(name) / STAGE_RECORD
        if not record_path.is_file():
            return [f"it has no {STAGE_RECORD}"]
        try:
            found = read_json(record_path)
        except ValueError as error:
            return [f"its record is unreadable ({error})"]
        if not (isinstance(found, dict) and all(isinstance(found.get(key), dict) for key in RECORD_KEYS)):
            return [f"its record {record_path} is incomplete"]
        if not isinstance(found.get("outputs"), dict):
            return ["its record lists no files (written by an earlier version of this pipeline)"]
        return record_differences(found, wanted) or self.output_problems(name, found["outputs"])

    def output_problems(self, name: str, recorded: dict) -> list[str]:
        """The recorded files of a stage that are missing or no longer match their size, line
        count and hash: a damaged intermediate file must not become the next stage's input."""
        problems = []
        for relative, facts in sorted(recorded.items()):
            path = self.stage(name) / relative
            if not path.is_file():
                problems.append(f"{name}/{relative} is missing")
                continue
            now = self.facts(path)
            if now != facts:
                problems.append(f"{name}/{relative} no longer matches its record "
                                f"({describe(facts)} -> {describe(now)})")
        return problems

    def stage_files(self, name: str) -> list[Path]:
        """A finished stage's files as its record lists them: the inputs of the next stage."""
        return [self.stage(name) / relative for relative in read_json(self.stage(name) / STAGE_RECORD)["outputs"]]


RECORD_KEYS = ("config", "options", "tools", "inputs")
# Settings a stage does not read, left out of its record so that changing one (say --vocab-size)
# rebuilds only the stages it shapes: raw/ and tok/ of a large corpus take hours. A stage's
# inputs are the previous stage's files, so a change upstream still reaches every later stage.
_SUBWORDS = {"vocab_size", "spm_model_type", "character_coverage"}
_TEXT = {"tokenizer", "normalize_punctuation", "lowercase", "clean_on", "clean_min", "clean_max",
         "clean_ratio", "valid_every"}
NOT_SHAPING = {"raw": _SUBWORDS | _TEXT | {"expected_sizes"}, "tok": _SUBWORDS | {"seed", "expected_sizes"}}


def file_facts(path: Path) -> dict:
    """Size, line count and SHA-256 of a file's bytes, in one pass."""
    digest, size, lines = hashlib.sha256(), 0, 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return {"bytes": size, "lines": lines, "sha256": digest.hexdigest()}


def describe(facts: dict) -> str:
    try:
        return f"{facts['lines']:,} lines, {facts['bytes']:,} bytes, sha256 {facts['sha256'][:12]}"
    except (KeyError, TypeError, ValueError):
        return f"{facts!r}"


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    # Read once per process: each lookup parses a package's metadata, and every stage asks.
    versions = []
    for tool in TOOLS:
        try:
            versions.append((tool, metadata.version(tool)))
        except metadata.PackageNotFoundError:
            versions.append((tool, None))
    return tuple(versions)


def tool_versions() -> dict[str, str | None]:
    return dict(_installed_versions())


def record_differences(found: dict, wanted: dict) -> list[str]:
    """The exact differences between two stage records, as short sentences."""
    differences = []
    for key in ("config", "options", "tools"):
        for name in sorted(set(found.get(key, {})) | set(wanted[key])):
            old, new = found.get(key, {}).get(name), wanted[key].get(name)
            if old != new:
                differences.append(f"{key} {name} was {old!r}, now {new!r}")
    old_inputs, new_inputs = found.get("inputs", {}), wanted["inputs"]
    for path in sorted(set(old_inputs) | set(new_inputs)):
        old, new = old_inputs.get(path), new_inputs.get(path)
        if old is None:
            differences.append(f"new input {path}")
        elif new is None:
            differences.append(f"input {path} is no longer used")
        elif old != new:
            differences.append(f"input {path} changed ({short(old)} -> {short(new)})")
    return differences


def short(facts) -> str:
    """Size and hash of a recorded input, whatever a damaged record holds instead."""
    try:
        return f"{facts['bytes']:,} bytes, sha256 {facts['sha256'][:12]}"
    except (KeyError, TypeError, ValueError):
        return repr(facts)


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
