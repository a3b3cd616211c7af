"""Running a study: every (system, seed) of one corpus, and the grid of a preset over several pairs.

Seed-major: an interrupted study has every system for its first seeds (matched comparisons). One
`study run` at a time per WORK (a lock). Each finished run is packed into RECORDS (records.py) when
asked; a grid prepares a missing catalog corpus first and restores runs already recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...data.prepared import PreparedCorpus
from ...files import locked_folder, read_json
from .config import CONFIG, claim
from .integrity import corpus_hashes, run_key
from .presets import Preset, grid_config
from .progress import log
from .records import (RERUNS, check_same_corpus, next_rerun, pack_rerun, pack_run, restore_runs, run_archive_path,
                      write_corpus_record)
from .report import report
from .run import run_one
from .systems import check_systems, parse_system


def run_study(config: dict, records: Path | None = None, write_report: bool = True) -> dict | None:
    """Every (system, seed) of the study, seed-major; with `records`, each finished run is packed there.

    Holds WORK's lock until the study ends (its fairseq children die with it): a second study on
    WORK would train the same runs in the same folders."""
    with locked_folder(Path(config["work"]), "study run"):
        return run_systems(config, records, write_report)


def run_systems(config: dict, records: Path | None = None, write_report: bool = True) -> dict | None:
    work = Path(config["work"])
    check_systems(config, config["systems"])
    claim(work, config)
    corpus = PreparedCorpus.load(Path(config["data"]))
    hashes = corpus_hashes(corpus)
    if records is not None:
        write_corpus_record(records, read_json(work / CONFIG), corpus)
    systems = [parse_system(s) for s in config["systems"]]
    # Seed-major: an interrupted study has every system for its first seeds (matched comparisons).
    grid = [(system, seed) for seed in config["seeds"] for system in systems]
    runs = []
    for i, (system, seed) in enumerate(grid, 1):
        run_dir = work / "runs" / system.id / f"seed{seed}"
        state = "finished" if (run_dir / "result.json").is_file() else "to run"
        log(f"run {i}/{len(grid)}: {system.label}, seed {seed} ({state})")
        key = run_key(config, system.criterion_args(config["label_smoothing"], config["stk_args"]), seed, hashes,
                      corpus.config)
        result = run_one(config, system, seed, corpus, run_dir, key)
        log(f"run {i}/{len(grid)}: BLEU {result['bleu']:.2f} chrF {result['chrf']:.2f} "
            f"len ratio {result['length_ratio']:.3f} ({result['seconds']:.0f} s)")
        result["run_dir"] = str(run_dir.relative_to(work))
        runs.append(result)
        if records is not None and pack_run(records, system.id, seed, run_dir):
            log(f"record of {system.label} seed {seed} packed into {records}")
    return report(work, config, corpus, runs, planned=len(grid)) if write_report else None


def run_grid(preset: Preset, preset_name: str, data_root: Path, work_root: Path, records: Path,
             pairs: list[str] | None, seeds: list[int] | None, argv: list[str]) -> None:
    """The preset on every pair, seed-major across pairs; resumable (finished runs are kept)."""
    from ...data import catalogs

    pairs, seeds = list(pairs or preset.pairs), list(seeds or preset.seeds)
    if "de" in pairs:
        raise ValueError("--pairs: German (de) is kept out of the study (it is the paper's tuning language)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    places = {pair: (Path(data_root) / f"catalogs.en-{pair}", Path(work_root) / f"study-{pair}") for pair in pairs}
    for pair, (data, work) in places.items():
        if not (data / "data-bin").is_dir():
            log(f"preparing the en-{pair} catalog corpus in {data}")
            catalogs.main(["--target-lang", pair, "--out", str(data), *preset.catalog_args])
        # Every pair's plan is on record from the start (the page shows what is planned and not finished).
        config = grid_config(preset, preset_name, pair, data, work, seeds[0], seeds, argv)
        claim(work, config)
        corpus = PreparedCorpus.load(data)
        check_same_corpus(Path(records) / pair, corpus)
        # Runs finished elsewhere (a fresh clone's committed records) are not trained again.
        for run_dir in restore_runs(Path(records) / pair, work):
            log(f"restored the recorded run {run_dir} from {Path(records) / pair}")
        write_corpus_record(Path(records) / pair, read_json(work / CONFIG), corpus)
    for seed in seeds:
        for pair, (data, work) in places.items():
            log(f"grid: seed {seed} on en-{pair}")
            config = grid_config(preset, preset_name, pair, data, work, seed, seeds, argv)
            run_study(config, records=Path(records) / pair, write_report=False)
    log("grid finished")


def run_rerun(preset: Preset, preset_name: str, data_root: Path, work_root: Path, records: Path, pair: str,
              system_spec: str, seed: int, argv: list[str]) -> Path | None:
    """Train a recorded grid run again with the grid's settings (same run key), in
    WORK_ROOT/study-<pair>/reruns/<system>__seed<N>__r<K>/, and pack it into RECORDS/<pair>/reruns/.

    The page sets it beside the grid's run: how far a run moves with nothing changed but where (and
    by which package source) it ran. Resumable: an unfinished rerun K is continued, not renumbered."""
    system = parse_system(system_spec)
    if system.spec not in preset.systems:
        raise ValueError(f"--system {system_spec!r} is not a system of preset {preset_name!r}: "
                         f"{', '.join(preset.systems)}")
    pair_records = Path(records) / pair
    if not run_archive_path(pair_records, system.id, seed).is_file():
        raise ValueError(f"--seed {seed} --system {system_spec!r}: no recorded run in {pair_records} to train again "
                         f"(the grid records it first)")
    data, work = Path(data_root) / f"catalogs.en-{pair}", Path(work_root) / f"study-{pair}"
    if not (data / "data-bin").is_dir():
        raise FileNotFoundError(f"--data-root {data_root}: no prepared en-{pair} corpus in {data} (the grid "
                                f"command prepares it)")
    corpus = PreparedCorpus.load(data)
    check_same_corpus(pair_records, corpus)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the grid: the thread count can change the rounding
    config = grid_config(preset, preset_name, pair, data, work, seed, list(preset.seeds), argv)
    reruns = work / RERUNS
    reruns.mkdir(parents=True, exist_ok=True)
    # Its own lock: a grid may be training in WORK (it holds WORK's) while this runs.
    with locked_folder(reruns, "study rerun"):
        rerun = next_rerun(pair_records, system.id, seed)
        run_dir = reruns / f"{system.id}__seed{seed}__r{rerun}"
        key = run_key(config, system.criterion_args(config["label_smoothing"], config["stk_args"]), seed,
                      corpus_hashes(corpus), corpus.config)
        log(f"rerun {rerun} of {system.label}, seed {seed} on en-{pair} -> {run_dir}")
        result = run_one(config, system, seed, corpus, run_dir, key)
        log(f"rerun {rerun}: BLEU {result['bleu']:.2f} chrF {result['chrf']:.2f} "
            f"len ratio {result['length_ratio']:.3f} ({result['seconds']:.0f} s)")
        archive = pack_rerun(pair_records, system.id, seed, rerun, run_dir)
        if archive:
            log(f"record of rerun {rerun} packed into {archive}")
        return archive
