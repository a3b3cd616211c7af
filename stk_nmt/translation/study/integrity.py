"""What keeps a study's finished runs true to what it is asked now: run keys and system checks.

A run's key holds everything that shapes its result, in three parts: `train` (the data-bin's
dictionaries and training/validation data by SHA-256, the system's criterion flags, the recipe,
budget, fairseq flags and seed), `decode` (the test data and references by SHA-256, how they are
scored, the beam and --generate-args) and `analysis` (the validation data, --analysis-sentences).
A finished run records its key in result.json, and a run that starts training records the train
part in RUN/run-key.json. A later `study run` compares them with the key of the current command and
redoes what a change affects, saying why: a changed train part retrains; a changed decode part
decodes and scores again with the run's kept checkpoint (retrains when the checkpoint was deleted,
the default); a changed analysis part repeats only the analysis of lam.

A system's flags are checked before the study records it (check_system), so a typo never enters
study-config.json, and a system an older version recorded with a bad flag is dropped from the grid.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Callable

from ...files import file_sha256, read_json, write_json

RUN_KEY = "run-key.json"
PARTS = ("train", "decode", "analysis")


# ---- keys ---------------------------------------------------------------------------------------
def corpus_hashes(corpus) -> dict[str, dict[str, str]]:
    """SHA-256 of a prepared corpus's files, by what they feed: {"train": dictionaries and the
    train/valid data-bin files, "decode": test data-bin files and references, "analysis": valid
    data-bin files}. Hashed once per `study run`: seconds for a WMT-sized data-bin."""
    groups: dict[str, dict[str, str]] = {"train": {}, "decode": {}, "analysis": {}}
    for path in sorted(Path(corpus.data_bin).iterdir()):
        if not path.is_file() or not (path.suffix in (".bin", ".idx") or path.name.startswith("dict.")):
            continue
        digest, split = file_sha256(path), path.name.split(".", 1)[0]
        if split in ("dict", "train", "valid"):
            groups["train"][path.name] = digest
        if split == "valid":
            groups["analysis"][path.name] = digest
        if split.startswith("test") or split == "dict":
            groups["decode"][path.name] = digest
    references = corpus.root / corpus.manifest["references"]
    for path in sorted(references.glob("test*")):
        groups["decode"][f"references/{path.name}"] = file_sha256(path)
    return groups


def run_key(config: dict, criterion_args: list[str], seed: int, hashes: dict[str, dict[str, str]],
            corpus_config: dict) -> dict:
    return {
        "train": {"data": hashes["train"], "criterion_args": criterion_args, "recipe": config["recipe"],
                  "max_update": config["max_update"], "fairseq_args": config["fairseq_args"], "seed": seed},
        "decode": {"data": hashes["decode"], "beam": config["beam"], "generate_args": config["generate_args"],
                   "scoring": {k: corpus_config.get(k) for k in ("lowercase", "tokenizer", "target_lang")}},
        "analysis": {"data": hashes["analysis"], "sentences": config["analysis_sentences"]},
    }


def describe_change(old: dict, new: dict) -> str:
    """'data (test.src-tgt.tgt.bin, ...)' or 'generate_args [] -> [...]': what differs in one part."""
    said = []
    for name in dict.fromkeys([*old, *new]):
        if old.get(name) == new.get(name):
            continue
        if name == "data":
            files = sorted(f for f in {*old.get(name, {}), *new.get(name, {})}
                           if old.get(name, {}).get(f) != new.get(name, {}).get(f))
            said.append(f"data ({', '.join(files[:4])}{' ...' if len(files) > 4 else ''})")
        else:
            said.append(f"{name} {old.get(name)!r} -> {new.get(name)!r}")
    return ", ".join(said)


def align_run(run_dir: Path, key: dict, analysed: bool, log: Callable[[str], None]) -> tuple[dict | None, set[str]]:
    """(the finished result, the parts to redo) for run_dir under key; an empty set: keep the result.

    Clears what a change makes stale: the whole run dir when the train part changed (or when a
    decode/analysis change finds no checkpoint to reuse), result.json otherwise. analysed: the
    system has a lam analysis (the baseline has none, so its analysis part never matters)."""
    result_path, key_path = run_dir / "result.json", run_dir / RUN_KEY
    previous = read_json(result_path) if result_path.is_file() else None
    trained_with = read_json(key_path) if key_path.is_file() else None
    if previous is not None and "key" not in previous:
        log(f"{run_dir}: finished before runs recorded their key: kept as it is (delete it to redo it)")
        return previous, set()
    if previous is not None:
        trained_with = previous["key"]["train"]
    if trained_with is None:
        if run_dir.is_dir() and any(run_dir.iterdir()):
            log(f"{run_dir}: a partial run that recorded no key: starting it over")
            shutil.rmtree(run_dir)
        return None, set(PARTS)
    if trained_with != key["train"]:
        log(f"{run_dir}: trained with other settings ({describe_change(trained_with, key['train'])}): retraining")
        shutil.rmtree(run_dir)
        return None, set(PARTS)
    if previous is None:
        return None, set(PARTS) - ({"train"} if (run_dir / "train.done").is_file() else set())
    stale = {part for part in ("decode", "analysis") if previous["key"][part] != key[part]}
    if not analysed:
        stale.discard("analysis")
    if not stale:
        return previous, set()
    changes = "; ".join(f"{part}: {describe_change(previous['key'][part], key[part])}" for part in sorted(stale))
    if not (run_dir / "checkpoint_last.pt").is_file():
        log(f"{run_dir}: {changes}; its checkpoint was deleted after the run (--keep-checkpoints keeps it): "
            f"retraining")
        shutil.rmtree(run_dir)
        return None, set(PARTS)
    log(f"{run_dir}: {changes}: {' and '.join(sorted(stale))} again with the kept checkpoint")
    return previous, stale


def record_training_key(run_dir: Path, key: dict) -> None:
    """Before training starts: what the run's checkpoints are trained with."""
    write_json(run_dir / RUN_KEY, key["train"], indent=1)


# ---- systems ------------------------------------------------------------------------------------
def _last_value(args: list[str], flag: str) -> str | None:
    value = None
    for i, word in enumerate(args):
        if word == flag and i + 1 < len(args):
            value = args[i + 1]
        elif word.startswith(flag + "="):
            value = word.split("=", 1)[1]
    return value


def check_system(spec: str, criterion_args: list[str], train_args: list[str]) -> None:
    """Refuses a system whose criterion flags fairseq-train would refuse: unknown flags, bad values
    (the criterion's own checks), naming the system. criterion_args: ["--criterion", NAME, ...];
    train_args: the recipe's and the user's fairseq-train flags (for --max-tokens)."""
    # Importing the package's criteria registers them with fairseq before the lookup.
    from ...criterions.aggregated import AggregateConfig, check_aggregate_flags
    from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    name = criterion_args[1]
    config_class = CRITERION_DATACLASS_REGISTRY.get(name)
    if config_class is None:
        return  # a criterion without a dataclass: fairseq-train checks it
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False, allow_abbrev=False)
    gen_parser_from_dataclass(parser, config_class())
    try:
        parsed, unknown = parser.parse_known_args(criterion_args[2:])
    except argparse.ArgumentError as error:
        raise ValueError(f"--systems entry {spec!r}: {error}") from None
    if unknown:
        raise ValueError(f"--systems entry {spec!r}: {name} has no flag {unknown[0]!r} (criterion flags: "
                         f"{' '.join(sorted(o for o in parser._option_string_actions if o.startswith('--')))})")
    if issubclass(config_class, AggregateConfig):
        max_tokens = _last_value(train_args, "--max-tokens")
        parsed.max_tokens = int(max_tokens) if max_tokens else None
        parsed.max_tokens_valid = _last_value(train_args, "--max-tokens-valid") or parsed.max_tokens
        try:
            check_aggregate_flags(parsed)
        except ValueError as error:
            raise ValueError(f"--systems entry {spec!r}: {error}") from None
