"""The --stk-* flags every criterion of this package takes (AggregateConfig) and their checks.

No `from __future__ import annotations` in modules with config dataclasses: fairseq builds its
argparse flags from the field types and needs real types, not strings.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Optional, Tuple

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

from stk_nmt.core import SMOOTHERS, aggregate_names, get_aggregate
from stk_nmt.core.aggregates import DEFAULT_K_RATIO, check_settings, ignored_arguments, resolve_k_settings
from stk_nmt.core.aggregates.settings import FLAGS

logger = logging.getLogger(__name__)

LAM_OPTIMIZERS = ("sgd", "fairseq")
ALWAYS_AVERAGE = ("none", "eos")  # which target tokens bypass the top-k aggregate (--stk-always-average)


@dataclass
class AggregateConfig(FairseqDataclass):
    """Aggregation flags shared by every criterion of this package (`stk_k_ratio` -> --stk-k-ratio)."""

    # A str checked against the registry when the criterion is built (check_aggregate_flags), not a
    # ChoiceEnum: fairseq turns a ChoiceEnum into argparse choices when this module is imported, which
    # would refuse an aggregate registered later (stk_nmt.core.register_aggregate).
    stk_aggregate: str = field(
        default="stk",
        metadata={"help": "how token losses are aggregated over the batch's non-padding tokens: "
                  "average (= plain mean), maximum, atk (mean of the k largest, exact), matk (hinge "
                  "lambda-form), stk (smoothed lambda-form, Xia et al. 2024); any name registered with "
                  f"stk_nmt.core.register_aggregate (registered at import: {', '.join(aggregate_names())})"},
    )
    stk_k: Optional[int] = field(
        default=None,
        metadata={"help": "k as a count of tokens per batch (give this or --stk-k-ratio, not both)"},
    )
    stk_k_ratio: Optional[float] = field(
        default=None,
        metadata={"help": f"k as a fraction of the batch's non-padding tokens, k = ceil(ratio * n); "
                  f"{DEFAULT_K_RATIO} when neither --stk-k nor --stk-k-ratio is given"},
    )
    stk_delta: float = field(default=0.01, metadata={"help": "SReLU smoothing delta of ST_k"})
    stk_smoother: ChoiceEnum(list(SMOOTHERS)) = field(
        default="srelu", metadata={"help": "the smooth hinge inside ST_k (srelu is the paper's)"}
    )
    stk_lam_init: Optional[float] = field(
        default=None,
        metadata={"help": "initial lam; unset: the k-th largest token loss of the first training "
                  "batch (averaged over processes)"},
    )
    stk_lam_optimizer: ChoiceEnum(list(LAM_OPTIMIZERS)) = field(
        default="sgd",
        metadata={"help": "sgd: the criterion updates lam itself by SGD at --stk-lam-lr once per "
                  "optimizer step (no lr schedule, warm-up, weight decay or clipping; fairseq's "
                  "optimizer sees a zero gradient for lam); fairseq: lam is an ordinary parameter "
                  "of fairseq's optimizer (model lr schedule, weight decay, clipping)"},
    )
    stk_lam_lr: float = field(
        default=1.0,
        metadata={"help": "learning rate of lam with --stk-lam-optimizer sgd (constant; lam moves by at "
                  "most lr * k/n down and lr * (1 - k/n) up per update)"},
    )
    stk_always_average: ChoiceEnum(list(ALWAYS_AVERAGE)) = field(
        default="none",
        metadata={"help": "eos: end-of-sentence target tokens always enter as in the plain average "
                  "(gradient weight 1/n) and are kept out of the aggregate, whose k counts the other "
                  "tokens only (k = ceil(ratio * n_rest)); none: every token goes through the aggregate"},
    )
    sentence_avg: bool = II("optimization.sentence_avg")
    # Read (not flags of their own): a count --stk-k above them can never fit in a batch.
    max_tokens: Optional[int] = II("dataset.max_tokens")
    max_tokens_valid: Optional[int] = II("dataset.max_tokens_valid")


def _given(value) -> bool:
    """A resolved config value (a bare dataclass holds the unresolved '${...}' string)."""
    return value is not None and not (isinstance(value, str) and value.startswith("${"))


def check_aggregate_flags(cfg: AggregateConfig) -> None:
    """Refuse invalid --stk-* flags, whatever the aggregate, naming the flag and value as typed:
    the core's one validator (settings.check_settings) with fairseq's spelling, plus the flags only
    fairseq has."""
    check_settings(cfg, LAM_OPTIMIZERS, names=FLAGS)
    if str(cfg.stk_always_average) not in ALWAYS_AVERAGE:
        raise ValueError(f"--stk-always-average must be one of {ALWAYS_AVERAGE}, got --stk-always-average {cfg.stk_always_average}")
    k = cfg.stk_k
    if k is not None:
        # A batch holds at most --max-tokens tokens (padding included), so at most that many targets.
        for flag, limit in (("--max-tokens", cfg.max_tokens), ("--max-tokens-valid", cfg.max_tokens_valid)):
            if _given(limit) and k > int(limit):
                raise ValueError(
                    f"--stk-k {k} cannot fit: a batch holds at most {flag} {limit} target tokens; "
                    f"lower --stk-k or give k as a fraction with --stk-k-ratio"
                )


def warn_ignored_flags(cfg: AggregateConfig) -> None:
    """Warn about --stk-* flags the chosen aggregate does not use (e.g. --stk-k-ratio with maximum),
    which would otherwise be accepted and silently ignored. A flag counts as given when it differs
    from its default (fairseq does not say what was typed)."""
    name, smoother = str(cfg.stk_aggregate), str(cfg.stk_smoother)
    kind = get_aggregate(name)
    defaults = {f.name: f.default for f in dataclasses.fields(AggregateConfig)}

    def changed(field):  # the flag's value when it differs from its default, else None
        value = getattr(cfg, field)
        return None if str(value) == str(defaults[field]) else value

    flags = {"k": ("--stk-k", cfg.stk_k), "k_ratio": ("--stk-k-ratio", cfg.stk_k_ratio),
             "delta": ("--stk-delta", changed("stk_delta")), "smoother": ("--stk-smoother", changed("stk_smoother")),
             "lam_init": ("--stk-lam-init", cfg.stk_lam_init)}
    ignored = [flags[arg] for arg in ignored_arguments(name, {a: v for a, (_, v) in flags.items()}, smoother)]
    if not kind.holds_lam:  # no lam: its update flags are the criterion's own
        ignored += [(flag, value) for flag, value in (
            ("--stk-lam-optimizer", changed("stk_lam_optimizer")), ("--stk-lam-lr", changed("stk_lam_lr")))
            if value is not None]
    if ignored:
        logger.warning(
            f"--stk-aggregate {name} does not use {', '.join(f'{flag} {value}' for flag, value in ignored)}: "
            f"{'that flag has' if len(ignored) == 1 else 'those flags have'} no effect"
            + (f" ({name} uses every token)" if not kind.uses_k else "")
        )


def resolve_k_args(cfg: AggregateConfig) -> Tuple[Optional[int], Optional[float]]:
    """(k, k_ratio) from the flags: exactly one; the paper's ratio when neither is given."""
    return resolve_k_settings(cfg.stk_k, cfg.stk_k_ratio)
