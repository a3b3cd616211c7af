"""The stk_* arguments: the fairseq criterion's --stk-* flags under their Python names, with the same
defaults and the same check (stk_nmt.core.aggregates.settings.check_settings, naming `stk_x=value`), as a dataclass of their own and mixed
into transformers' TrainingArguments / Seq2SeqTrainingArguments (HfArgumentParser then accepts both
--stk_k_ratio and --stk-k-ratio)."""

from dataclasses import dataclass, field, fields
from typing import Optional

from transformers import Seq2SeqTrainingArguments, TrainingArguments

from stk_nmt.core import AGGREGATES, SMOOTHERS
from stk_nmt.core.aggregates import DEFAULT_K_RATIO, check_settings
from stk_nmt.core.aggregates.settings import PYTHON_NAMES

# sgd: lam is stepped by the Trainer mixin's own SGD once per optimizer step (the fairseq criterion's
# default). The criterion's other value, "fairseq" (lam in fairseq's optimizer), has no counterpart here:
# lam is not a parameter of the model, so neither the Trainer's optimizer nor DDP would see it.
LAM_OPTIMIZERS = ("sgd",)


@dataclass
class STkArguments:
    """How token losses are aggregated; the names, defaults and meaning of the fairseq criterion's flags."""

    stk_aggregate: str = field(
        default="stk",
        metadata={"help": "how token losses are aggregated over the batch's non-padding tokens: average "
                  "(= transformers' own loss), maximum, atk (mean of the k largest), matk, stk (ST_k), or any "
                  "aggregate registered with stk_nmt.core.register_aggregate",
                  # The registry's live view: a name registered after this class is defined is accepted.
                  "choices": AGGREGATES},
    )
    stk_k: Optional[int] = field(
        default=None, metadata={"help": "k as a count of tokens per batch (give this or stk_k_ratio, not both)"})
    stk_k_ratio: Optional[float] = field(
        default=None,
        metadata={"help": f"k as a fraction of the batch's non-padding tokens, k = ceil(ratio * n); "
                  f"{DEFAULT_K_RATIO} when neither stk_k nor stk_k_ratio is given"})
    stk_delta: float = field(default=0.01, metadata={"help": "SReLU smoothing delta of ST_k"})
    stk_smoother: str = field(
        default="srelu", metadata={"help": "the smooth hinge inside ST_k (srelu is the paper's)",
                                   "choices": list(SMOOTHERS)})
    stk_lam_init: Optional[float] = field(
        default=None,
        metadata={"help": "initial lam; unset: the k-th largest token loss of the first training batch "
                  "(averaged over processes)"})
    stk_lam_optimizer: str = field(
        default="sgd",
        metadata={"help": "sgd: lam is updated by its own SGD at stk_lam_lr once per optimizer step "
                  "(no lr schedule, warm-up, weight decay or clipping)", "choices": list(LAM_OPTIMIZERS)})
    stk_lam_lr: float = field(
        default=1.0,
        metadata={"help": "learning rate of lam (constant; lam moves by at most lr * k/n down and "
                  "lr * (1 - k/n) up per optimizer step)"})

    def __post_init__(self):
        check_stk_arguments(self)


def check_stk_arguments(args) -> None:
    """The fairseq criterion's check (the core's one validator), naming `stk_x=value`."""
    check_settings(args, LAM_OPTIMIZERS, names=PYTHON_NAMES)


def stk_arguments_of(args) -> STkArguments:
    """The STkArguments part of any object that has the stk_* attributes (checked again)."""
    return STkArguments(**{f.name: getattr(args, f.name) for f in fields(STkArguments)})


@dataclass
class STkTrainingArguments(TrainingArguments, STkArguments):
    """transformers' TrainingArguments + the stk_* arguments (label smoothing: label_smoothing_factor)."""

    def __post_init__(self):
        check_stk_arguments(self)
        TrainingArguments.__post_init__(self)


@dataclass
class STkSeq2SeqTrainingArguments(Seq2SeqTrainingArguments, STkArguments):
    """transformers' Seq2SeqTrainingArguments + the stk_* arguments."""

    def __post_init__(self):
        check_stk_arguments(self)
        Seq2SeqTrainingArguments.__post_init__(self)
