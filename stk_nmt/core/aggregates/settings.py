"""The aggregate settings every door takes, and their one check.

The fairseq criteria's --stk-* flags, the Hugging Face Trainer's stk_* arguments and the vision
CLI's --aggregate/--k/--k-ratio/... are the same settings under different spellings. One validator
(check_aggregate_settings) checks them all; each door passes how it spells them (core/arguments.py:
`names`, {setting: flag}), so an error names the setting as the user typed it: `--stk-k-ratio 1.5`
on fairseq's command line, `stk_k_ratio=1.5` for a Python argument, `--k-ratio 1.5` in the vision CLI.
The aggregate's name is checked against the registry when the check runs, so an aggregate
registered after a door was defined is accepted by it.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Mapping, Optional, Sequence, Tuple

from ..arguments import ArgumentNames, arg_name, arg_value, bad_argument
from ..defaults import K_RATIO
from .registry import aggregate_names
from .smoothers import SMOOTHERS

DEFAULT_K_RATIO = K_RATIO["translation"]  # the paper's translation setting (k/n over target tokens)

SETTINGS = ("stk_aggregate", "stk_k", "stk_k_ratio", "stk_delta", "stk_smoother", "stk_lam_init",
            "stk_lam_optimizer", "stk_lam_lr")


def flag_name(name: str) -> str:
    """stk_k_ratio -> --stk-k-ratio (a command-line flag)."""
    return "--" + name.replace("_", "-")


FLAGS = {setting: flag_name(setting) for setting in SETTINGS}  # fairseq's spelling: --stk-k-ratio
PYTHON_NAMES: Mapping[str, str] = {}  # the arguments' own names: stk_k_ratio=1.5


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_aggregate_settings(values: Mapping[str, object], names: ArgumentNames = None,
                             lam_optimizers: Optional[Sequence[str]] = None) -> None:
    """Refuse invalid aggregate settings, whatever the aggregate, naming the setting and its value
    as the door spells them (`names`: {setting: flag}; missing: the Python name `setting=value`).

    values: {setting: value} for the settings of SETTINGS the door has (a door without a setting
    leaves it out). lam_optimizers: the values stk_lam_optimizer may take at this door.
    """
    if "stk_aggregate" in values and values["stk_aggregate"] not in aggregate_names():
        raise bad_argument("stk_aggregate", f"must be one of {aggregate_names()}", values["stk_aggregate"], names)
    if "stk_smoother" in values and values["stk_smoother"] not in SMOOTHERS:
        raise bad_argument("stk_smoother", f"must be one of {tuple(SMOOTHERS)}", values["stk_smoother"], names)
    k, ratio = values.get("stk_k"), values.get("stk_k_ratio")
    if k is not None and ratio is not None:
        raise ValueError(f"give {arg_name('stk_k', names)} or {arg_name('stk_k_ratio', names)}, not both: got "
                         f"{arg_value('stk_k', k, names)} {arg_value('stk_k_ratio', ratio, names)}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise bad_argument("stk_k", "must be an integer >= 1", k, names)
    if ratio is not None and not (_finite_number(ratio) and 0 < ratio <= 1):
        raise bad_argument("stk_k_ratio", "must be in (0, 1]", ratio, names)
    if "stk_delta" in values and not (_finite_number(values["stk_delta"]) and values["stk_delta"] > 0):
        raise bad_argument("stk_delta", "must be a finite number > 0", values["stk_delta"], names)
    if values.get("stk_lam_init") is not None and not _finite_number(values["stk_lam_init"]):
        raise bad_argument("stk_lam_init", "must be a finite number", values["stk_lam_init"], names)
    if lam_optimizers is not None and "stk_lam_optimizer" in values and str(values["stk_lam_optimizer"]) not in lam_optimizers:
        raise bad_argument("stk_lam_optimizer", f"must be one of {tuple(lam_optimizers)}", values["stk_lam_optimizer"],
                           names)
    if "stk_lam_lr" in values and not (_finite_number(values["stk_lam_lr"]) and values["stk_lam_lr"] > 0):
        raise bad_argument("stk_lam_lr", "must be a finite number > 0", values["stk_lam_lr"], names)


def check_settings(settings, lam_optimizers: Sequence[str], names: ArgumentNames = FLAGS) -> None:
    """check_aggregate_settings for an object with every stk_* attribute of SETTINGS (a fairseq
    config, the Hugging Face arguments); names: FLAGS (--stk-k-ratio 1.5, the default) or
    PYTHON_NAMES (stk_k_ratio=1.5)."""
    values = {setting: getattr(settings, setting) for setting in SETTINGS}
    # fairseq may hand a ChoiceEnum field as an enum member: compare its string.
    values = {setting: value.value if isinstance(value, Enum) else value for setting, value in values.items()}
    check_aggregate_settings(values, names, lam_optimizers)


def resolve_k_settings(k: Optional[int], k_ratio: Optional[float]) -> Tuple[Optional[int], Optional[float]]:
    """(k, k_ratio) from the settings: exactly one; the paper's ratio when neither is given."""
    if k is None and k_ratio is None:
        return None, DEFAULT_K_RATIO
    return k, k_ratio
