"""The systems a study compares: `baseline`, or a registered aggregate (`stk:R`, `atk:R`, `matk:R`,
`maximum`, ...), each with optional extra flags.

`baseline` is label_smoothed_cross_entropy; `stk:R` is ST_k at k/n = R, `atk:R` AT_k (the exact mean of
the k largest); an aggregate that takes no k is named alone (`maximum`); any aggregate registered with
stk_nmt.core.register_aggregate is accepted the same way. `NAME[:R],--flag=value,...` adds --stk-* flags
for one system. A system's flags are checked with fairseq's own parser before a study records it
(check_systems).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..recipes import RECIPES
from .integrity import check_system

BASELINE = "label_smoothed_cross_entropy"


@dataclass(frozen=True)
class System:
    spec: str
    criterion: str
    aggregate: str | None  # None for the baseline
    k_ratio: float | None
    flags: tuple[str, ...]

    @property
    def id(self) -> str:
        """A directory name."""
        return re.sub(r"[^A-Za-z0-9.=_-]+", "_", self.spec.replace(":", "-").replace(",", "_")).strip("_")

    @property
    def label(self) -> str:
        if self.aggregate is None:
            return "baseline (lsce)"
        extra = " " + " ".join(self.flags) if self.flags else ""
        ratio = "" if self.k_ratio is None else f" k/n={self.k_ratio:g}"
        return f"{self.aggregate}{ratio}{extra}"

    def criterion_args(self, label_smoothing: float, stk_args: list[str]) -> list[str]:
        args = ["--criterion", self.criterion, "--label-smoothing", str(label_smoothing)]
        if self.aggregate is not None:
            ratio = [] if self.k_ratio is None else ["--stk-k-ratio", str(self.k_ratio)]
            args += ["--stk-aggregate", self.aggregate, *ratio, *stk_args, *self.flags]
        return args


def parse_system(spec: str) -> System:
    from ...core import aggregate_names, get_aggregate

    if spec in ("baseline", BASELINE):
        return System("baseline", BASELINE, None, None, ())
    head, *flag_parts = spec.split(",")
    name, colon, ratio = head.partition(":")
    forms = ", ".join(f"'{n}:R'" if get_aggregate(n).uses_k else f"'{n}'" for n in aggregate_names())
    if name not in aggregate_names():
        raise ValueError(f"--systems entry must be 'baseline' or one of {forms} (optionally followed by "
                         f",--flag=value), got {spec!r}")
    k_ratio = None
    if get_aggregate(name).uses_k:
        if not ratio:
            raise ValueError(f"--systems entry {spec!r}: {name} needs a k ratio, as in '{name}:0.96'")
        try:
            k_ratio = float(ratio)
        except ValueError:
            raise ValueError(f"--systems entry {spec!r}: k ratio {ratio!r} is not a number") from None
        if not 0 < k_ratio <= 1:
            raise ValueError(f"--systems entry {spec!r}: k ratio must be in (0, 1], got {k_ratio}")
    elif colon:
        raise ValueError(f"--systems entry {spec!r}: {name} takes no k; name it alone, as in '{name}'")
    flags = []
    for part in flag_parts:
        if not part.startswith("--"):
            raise ValueError(f"--systems entry {spec!r}: extra flag {part!r} must look like --stk-flag=value")
        flags += part.split("=", 1)
    return System(spec, "stk", name, k_ratio, tuple(flags))


def reference_of(system: System, specs: list[str]) -> System | None:
    """The plain system a variant is contrasted with: the same aggregate and k/n without the extra
    flags (stk:0.96 for stk:0.96,--stk-delta=0.1), when the study has it; None otherwise."""
    if not system.flags:
        return None
    for other in map(parse_system, specs):
        if other.aggregate == system.aggregate and other.k_ratio == system.k_ratio and not other.flags:
            return other
    return None


def check_systems(config: dict, specs: list[str]) -> None:
    """Refuses a system whose flags fairseq-train would refuse, before anything is recorded."""
    train_args = [*RECIPES[config["recipe"]].args, *config["fairseq_args"]]
    for system in map(parse_system, specs):
        check_system(system.spec, system.criterion_args(config["label_smoothing"], config["stk_args"]), train_args)
