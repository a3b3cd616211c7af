"""The study's committed records: each finished run's compact record, so that a fresh clone re-renders the page.

A study's work folder holds checkpoints, binarised data and logs that are not committed. What the page
needs is small: per study, the configuration, the corpus description and the test references
(RECORDS/corpus.json); per finished run, result.json (scores, signatures, log summary with the
validation curve, token analysis, timings, the machine) and its test hypotheses, packed into
RECORDS/runs/<system id>__seed<N>.tar.xz once the run is finished (never rewritten, so a repository
that commits them only adds files, like the logistic grid's cell archives). `unpack_study` rebuilds a
work folder from the records that `study report`/`study page` read as if the runs had been made there.
A rerun (`study rerun`: a recorded run trained again with the same settings) is packed the same way
into RECORDS/reruns/<system id>__seed<N>__r<K>.tar.xz, apart from the grid's runs and in no test.

    python -m stk_nmt.translation.study page --records docs/study-runs/fr docs/study-runs/es --out docs/study.md

Written with the standard library's tarfile (xz), as stk_nmt.experiments.cell_archive.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

from ...files import atomic_write, atomic_write_text, read_json, write_json

CORPUS_RECORD = "corpus.json"
RUN_ARCHIVE = re.compile(r"^(?P<system>[A-Za-z0-9.=_-]+)__seed(?P<seed>\d+)\.tar\.xz$")
# A recorded run trained again with the same settings (`study rerun`): RECORDS/reruns/, apart from the grid's.
RERUN_ARCHIVE = re.compile(r"^(?P<system>[A-Za-z0-9.=_-]+)__seed(?P<seed>\d+)__r(?P<rerun>\d+)\.tar\.xz$")
RERUNS = "reruns"
MEMBER = re.compile(r"^[A-Za-z0-9._-]+$")  # flat member names only: an archive cannot write elsewhere


def run_archive_path(records: Path, system_id: str, seed: int) -> Path:
    return Path(records) / "runs" / f"{system_id}__seed{seed}.tar.xz"


def write_corpus_record(records: Path, config: dict, corpus) -> Path:
    """RECORDS/corpus.json: the study configuration, the corpus manifest and the test references."""
    path = Path(records) / CORPUS_RECORD
    record = {"config": config, "manifest": corpus.manifest, "corpus_config": corpus.config,
              "references": corpus.references("test")}
    catalogs = corpus.root / "catalogs.json"
    if catalogs.is_file():
        record["catalogs"] = read_json(catalogs)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record, indent=1)
    return path


def pack_run(records: Path, system_id: str, seed: int, run_dir: Path) -> Path | None:
    """Archive a finished run (result.json and its hypotheses) once; None when already archived."""
    return _pack(run_archive_path(records, system_id, seed), run_dir)


def rerun_archive_path(records: Path, system_id: str, seed: int, rerun: int) -> Path:
    return Path(records) / RERUNS / f"{system_id}__seed{seed}__r{rerun}.tar.xz"


def next_rerun(records: Path, system_id: str, seed: int) -> int:
    """The number the next rerun of (system, seed) takes: 1 + the reruns already recorded."""
    rerun = 1
    while rerun_archive_path(records, system_id, seed, rerun).exists():
        rerun += 1
    return rerun


def pack_rerun(records: Path, system_id: str, seed: int, rerun: int, run_dir: Path) -> Path | None:
    """Archive a finished rerun once, as pack_run does a grid run; None when already archived."""
    return _pack(rerun_archive_path(records, system_id, seed, rerun), run_dir)


def _pack(target: Path, run_dir: Path) -> Path | None:
    run_dir = Path(run_dir)
    result = read_json(run_dir / "result.json")
    if target.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    members = [run_dir / "result.json", run_dir / result["hypotheses"]]

    def write(tmp: str) -> None:
        with tarfile.open(tmp, "w:xz") as tar:
            for path in members:
                tar.add(path, arcname=path.name)

    atomic_write(target, write, suffix=".tar.xz")
    return target


class RecordedCorpus:
    """What the study's report reads from a PreparedCorpus (config, manifest, root, test references)."""

    def __init__(self, record: dict, root: Path):
        self.config = record["corpus_config"]
        self.manifest = record["manifest"]
        self.root = Path(root)
        self._references = record["references"]

    def references(self, split: str) -> list[str]:
        if split != "test":
            raise ValueError(f"the records keep the test references only, got split={split!r}")
        return list(self._references)


def unpack_study(records: Path, work: Path) -> tuple[dict, RecordedCorpus]:
    """Rebuild WORK (study-config.json, runs/<system>/seed<N>/...) from RECORDS; returns (config, corpus)."""
    records, work = Path(records), Path(work)
    corpus_path = records / CORPUS_RECORD
    if not corpus_path.is_file():
        raise FileNotFoundError(f"--records {records} has no {CORPUS_RECORD}: not a study's records folder")
    record = read_json(corpus_path)
    config = dict(record["config"], work=str(work))
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "study-config.json", config, indent=1)
    if "catalogs" in record:
        write_json(work / "catalogs.json", record["catalogs"], indent=1)
    restore_runs(records, work)
    for archive in sorted((records / RERUNS).glob("*.tar.xz")):
        if RERUN_ARCHIVE.match(archive.name):
            _extract(archive, work / RERUNS / archive.name[: -len(".tar.xz")])
    return config, RecordedCorpus(record, work)


def rerun_results(work: Path) -> list[dict]:
    """The finished reruns in WORK (WORK/reruns/<system>__seed<N>__r<K>/result.json), each with its
    number as `rerun` and, when the grid's run is in WORK too, `translations_differing`: [test
    translations that differ from the grid run's, test translations]; in name order."""
    results = []
    for path in sorted((Path(work) / RERUNS).glob("*/result.json")):
        match = RERUN_ARCHIVE.match(path.parent.name + ".tar.xz")
        if not match:
            continue
        result = {**read_json(path), "rerun": int(match["rerun"])}
        grid_run = Path(work) / "runs" / match["system"] / f"seed{match['seed']}"
        if (grid_run / "result.json").is_file():
            ours = (path.parent / result["hypotheses"]).read_text(encoding="utf-8").splitlines()
            theirs = (grid_run / read_json(grid_run / "result.json")["hypotheses"]).read_text(encoding="utf-8").splitlines()
            differing = sum(a != b for a, b in zip(ours, theirs)) + abs(len(ours) - len(theirs))
            result["translations_differing"] = [differing, max(len(ours), len(theirs))]
        results.append(result)
    return results


def _run_archives(records: Path):
    for archive in sorted((Path(records) / "runs").glob("*.tar.xz")):
        match = RUN_ARCHIVE.match(archive.name)
        if match:
            yield archive, match["system"], int(match["seed"])


def _extract(archive: Path, run_dir: Path) -> None:
    """The flat members of one run archive into run_dir, result.json last (it marks the run finished)."""
    with tarfile.open(archive, "r:xz") as tar:
        members = tar.getmembers()
        for member in members:
            if not (member.isfile() and MEMBER.match(member.name)):
                raise ValueError(f"archive {str(archive)!r} holds {member.name!r}, not a flat run file")
        run_dir.mkdir(parents=True, exist_ok=True)
        for member in sorted(members, key=lambda m: m.name == "result.json"):
            target = run_dir / member.name
            atomic_write_text(target, io.TextIOWrapper(tar.extractfile(member), encoding="utf-8").read())
            os.utime(target, (member.mtime, member.mtime))


def restore_runs(records: Path, work: Path) -> list[Path]:
    """Write back every recorded run whose folder in WORK has no result.json; returns those run folders.

    A fresh clone (or another machine) then resumes a grid where its committed records stop, instead of
    training the recorded runs again; runs already finished in WORK are left as they are."""
    restored = []
    for archive, system_id, seed in _run_archives(records):
        run_dir = Path(work) / "runs" / system_id / f"seed{seed}"
        if not (run_dir / "result.json").is_file():
            _extract(archive, run_dir)
            restored.append(run_dir)
    return restored


def check_same_corpus(records: Path, corpus) -> None:
    """Refuse to add runs on another corpus (other catalogs installed) to a study's records."""
    path = Path(records) / CORPUS_RECORD
    if not path.is_file():
        return
    recorded = read_json(path)["manifest"]["config"]["corpus"]
    if recorded != corpus.manifest["config"]["corpus"]:
        raise ValueError(f"--records {records} holds runs on corpus {recorded!r}, the prepared data is "
                         f"{corpus.manifest['config']['corpus']!r} (other catalogs): use other --records")
