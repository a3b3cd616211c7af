"""Named studies (`--preset`): the recipe, the update budget, the systems, seeds and catalog pairs."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    description: str
    recipe: str
    max_update: int
    systems: tuple[str, ...]
    seeds: tuple[int, ...]
    pairs: tuple[str, ...]  # catalog target languages (grid)
    catalog_args: tuple[str, ...] = ()  # for stk_nmt.data.catalogs (grid prepares a missing corpus)


# The systems of the question "does ST_k help translation", each with why it is there (the page's
# opening names them so; a system of another study is named by its label).
SYSTEM_ROLES = {
    "baseline": "the baseline (`label_smoothed_cross_entropy`)",
    "stk:0.96": "ST_k at k/n = 0.96 (the project's default)",
    "atk:0.96": "AT_k at 0.96 (the paper's Table 5 middle column)",
    "stk:0.96,--stk-delta=0.1": "ST_k at 0.96 with delta = 0.1 (the paper's Table 8)",
    "stk:0.96,--stk-always-average=eos": ("ST_k at 0.96 with end-of-sentence tokens always averaged "
                                          "(`--stk-always-average eos`, see docs/criteria.md), a test of whether "
                                          "EOS tokens falling below lam matter"),
}
STUDY_SYSTEMS = tuple(SYSTEM_ROLES)
PRESETS = {
    "catalogs": Preset(
        "the recipe `study` for 800 updates on an en->X gettext-catalog corpus (about 40k pairs)",
        recipe="study", max_update=800, systems=STUDY_SYSTEMS, seeds=(1, 2, 3, 4, 5), pairs=("fr", "es", "it"),
        catalog_args=("--valid-fraction", "0.01", "--test-fraction", "0.03")),
}


def grid_config(preset: Preset, preset_name: str, pair: str, data: Path, work: Path, seed: int,
                planned_seeds: list[int], argv: list[str]) -> dict:
    """One pair's study configuration as `run --preset` builds it, with the seed the grid runs now."""
    return {
        "name": pair, "data": str(data), "work": str(work), "systems": list(preset.systems),
        "seeds": [seed], "planned_seeds": list(planned_seeds), "recipe": preset.recipe,
        "max_update": preset.max_update, "label_smoothing": 0.1, "stk_args": [], "fairseq_args": [],
        "generate_args": [], "beam": 5, "log_interval": 10, "bootstrap_samples": 1000, "analysis_sentences": 500,
        "delete_checkpoints": True,
        # The command that makes (and resumes) this study: the grid's own.
        "command": "python -m stk_nmt.translation.study " + shlex.join(argv), "preset": preset_name,
    }
