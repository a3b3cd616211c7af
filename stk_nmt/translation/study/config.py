"""A study's configuration, WORK/study-config.json: what makes its runs comparable, and the plan."""

from __future__ import annotations

from pathlib import Path

from ...files import read_json, write_json
from .progress import log
from .systems import check_systems

CONFIG = "study-config.json"
# What makes runs comparable: a study directory refuses a second configuration of these.
FIXED_KEYS = ("data", "recipe", "max_update", "fairseq_args", "stk_args", "beam", "label_smoothing")


def claim(work: Path, config: dict) -> None:
    path = work / CONFIG
    if path.is_file():
        old = read_json(path)
        for key in FIXED_KEYS:
            # Before any run has finished nothing can become incomparable: a study that failed at
            # its first run is corrected by running it again with other settings (partial runs
            # retrain, as their run keys no longer match).
            if old.get(key) != config.get(key) and not any(work.glob("runs/*/*/result.json")):
                log(f"{key}={old.get(key)!r} -> {config.get(key)!r}: no run has finished yet, the new setting "
                    f"replaces the old one in {path}")
            elif old.get(key) != config.get(key):
                raise ValueError(f"--work {work} holds a study run with {key}={old.get(key)!r}, this one has "
                                 f"{key}={config.get(key)!r}: runs would not be comparable; use another --work")
        old_systems = []
        for spec in old.get("systems", []):
            try:  # an older version recorded systems before checking their flags
                check_systems(config, [spec])
                old_systems.append(spec)
            except ValueError as error:
                log(f"dropped {spec!r} from the grid of {path}: {error}")
        old_grid = (old_systems, old.get("seeds", []))
        config["systems"] = list(dict.fromkeys(old_grid[0] + config["systems"]))
        config["seeds"] = sorted(set(old_grid[1]) | set(config["seeds"]))
    work.mkdir(parents=True, exist_ok=True)
    write_json(path, config, indent=1)


def planned_runs(config: dict) -> int:
    """Systems x seeds of the whole plan (a grid runs one seed at a time but plans all of them)."""
    seeds = set(config["seeds"]) | set(config.get("planned_seeds", []))
    return len(config["systems"]) * len(seeds)
