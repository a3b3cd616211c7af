"""The stk_* settings every training-loop adapter takes (the fairseq criteria's --stk-* flags, the
Hugging Face Trainer's stk_* arguments): the default k, and one check of their values.

Each adapter spells a setting its own way in error messages (`--stk-k-ratio 1.5` on fairseq's
command line, `stk_k_ratio=1.5` for a Python argument), so the check takes the spelling as two
small functions instead of fixing one.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

from ..defaults import K_RATIO

DEFAULT_K_RATIO = K_RATIO["translation"]  # the paper's translation setting (k/n over target tokens)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def flag_name(name: str) -> str:
    """stk_k_ratio -> --stk-k-ratio (a command-line flag)."""
    return "--" + name.replace("_", "-")


def flag_given(name: str, value) -> str:
    """stk_k_ratio, 1.5 -> --stk-k-ratio 1.5 (as typed on the command line)."""
    return f"{flag_name(name)} {value}"


def check_settings(
    settings,
    lam_optimizers: Sequence[str],
    name: Callable[[str], str] = flag_name,
    given: Callable[[str, object], str] = flag_given,
) -> None:
    """Refuse invalid stk_* settings, whatever the aggregate, naming the setting and its value.

    settings: any object with the attributes stk_k, stk_k_ratio, stk_delta, stk_lam_init,
    stk_lam_optimizer, stk_lam_lr. lam_optimizers: the values stk_lam_optimizer may take with this
    adapter. name(setting) / given(setting, value): how the adapter spells them in the message.
    """
    k, ratio = settings.stk_k, settings.stk_k_ratio
    if k is not None and ratio is not None:
        raise ValueError(f"give {name('stk_k')} or {name('stk_k_ratio')}, not both: got "
                         f"{given('stk_k', k)} {given('stk_k_ratio', ratio)}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"{name('stk_k')} must be an integer >= 1, got {given('stk_k', k)}")
    if ratio is not None and not (_finite_number(ratio) and 0 < ratio <= 1):
        raise ValueError(f"{name('stk_k_ratio')} must be in (0, 1], got {given('stk_k_ratio', ratio)}")
    if not (_finite_number(settings.stk_delta) and settings.stk_delta > 0):
        raise ValueError(f"{name('stk_delta')} must be a finite number > 0, got {given('stk_delta', settings.stk_delta)}")
    if settings.stk_lam_init is not None and not _finite_number(settings.stk_lam_init):
        raise ValueError(f"{name('stk_lam_init')} must be a finite number, got "
                         f"{given('stk_lam_init', settings.stk_lam_init)}")
    if str(settings.stk_lam_optimizer) not in lam_optimizers:
        raise ValueError(f"{name('stk_lam_optimizer')} must be one of {tuple(lam_optimizers)}, got "
                         f"{given('stk_lam_optimizer', settings.stk_lam_optimizer)}")
    if not (_finite_number(settings.stk_lam_lr) and settings.stk_lam_lr > 0):
        raise ValueError(f"{name('stk_lam_lr')} must be a finite number > 0, got "
                         f"{given('stk_lam_lr', settings.stk_lam_lr)}")


def resolve_k_settings(k: Optional[int], k_ratio: Optional[float]) -> Tuple[Optional[int], Optional[float]]:
    """(k, k_ratio) from the settings: exactly one; the paper's ratio when neither is given."""
    if k is None and k_ratio is None:
        return None, DEFAULT_K_RATIO
    return k, k_ratio
