"""A directory built in stages, each stage recorded: a prepare command's bookkeeping, whatever the corpus.

Each stage is built in `<stage>.stk-tmp` and renamed when complete, with `<stage>/.stk-stage.json`
recording what it was built from (the settings that shape it, the tool versions, and the size and
SHA-256 of every input file: the corpus files or archives for the first stage, the previous stage's
files after that) and what it holds (size, line count and SHA-256 of every file it wrote, checked
before they are recorded by the check the stage is given). A re-run skips a stage whose record
matches and whose files are still what it recorded; it rebuilds one whose inputs or settings
changed, whose files were damaged, whose record is unreadable, or that was half-written, saying
why, so a damaged file never becomes the next stage's input. It never touches files it did not
make. A directory that already holds other files is refused; one that another run is using too.
Settings that differ from the last run's are printed and rebuild what they shape.

Which stages there are, what builds them and which settings shape which stage belong to a
subclass: pipeline.py's PreparedDir (raw/, tok/, spm/, data-bin/ of a translation corpus).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Callable

from ..files import lock_folder, read_json
from ..processes import hold_point
from .io import TMP_SUFFIX, atomic_write_text, remove_own_tmp

STAGE_RECORD = ".stk-stage.json"
RECORD_KEYS = ("config", "options", "tools", "inputs")


def log(message: str) -> None:
    print(f"[prepare {time.strftime('%H:%M:%S')}] {message}", flush=True)


class StagedDir:
    """An output directory built in stages, with its stage bookkeeping.

    A subclass says what its directory holds: STAGES (the stage names; their records mark a directory
    as one it made), TOOLS (the packages whose versions every stage records), NOT_SHAPING (per stage,
    the settings it does not read), CONFIG_FILE and LOCK_FILE (file names in the directory) and
    LOCK_PURPOSE (what a second run is told the directory is being used for). `config` is a
    dataclass: its fields are the settings recorded."""

    STAGES: tuple[str, ...] = ()
    TOOLS: tuple[str, ...] = ()
    NOT_SHAPING: dict[str, set[str]] = {}
    CONFIG_FILE: str
    LOCK_FILE: str
    LOCK_PURPOSE: str

    def __init__(self, root: Path, config):
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
        config_path = self.root / self.CONFIG_FILE
        wanted = json.dumps(asdict(self.config), indent=1, sort_keys=True)
        # Ours: the configuration record, or (when that was deleted) a stage record.
        ours = config_path.is_file() or any((self.root / stage / STAGE_RECORD).is_file() for stage in self.STAGES)
        if self.root.exists() and not ours and any(p.name != self.LOCK_FILE for p in self.root.iterdir()):
            raise ValueError(
                f"out_dir {self.root} exists and holds files this pipeline did not make; "
                f"choose an empty or new directory")
        if self.lock is None:
            self.lock = lock_folder(self.root, self.LOCK_PURPOSE, self.LOCK_FILE)
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
                  if key not in self.NOT_SHAPING.get(stage, ())}
        return {"config": config, "options": dict(options or {}), "tools": tool_versions(self.TOOLS),
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
def _installed_versions(tools: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    # Read once per process: each lookup parses a package's metadata, and every stage asks.
    versions = []
    for tool in tools:
        try:
            versions.append((tool, metadata.version(tool)))
        except metadata.PackageNotFoundError:
            versions.append((tool, None))
    return tuple(versions)


def tool_versions(tools: tuple[str, ...]) -> dict[str, str | None]:
    return dict(_installed_versions(tuple(tools)))


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
