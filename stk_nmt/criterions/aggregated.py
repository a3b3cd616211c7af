"""Shared base of the fairseq criteria: an individual token loss + a core aggregate.

Every criterion of this package is `AggregatedCriterion` + one method, `token_losses`, that says
what the loss of each target token is. The aggregation over the batch's non-padding tokens
(average, maximum, AT_k, MAT_k, ST_k), the trainable threshold lam, its update rule, the scaling
fairseq expects, checkpoint handling and the logged fields live here, once.

No `from __future__ import annotations` in modules with config dataclasses: fairseq builds its
argparse flags from the field types and needs real types, not strings.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from omegaconf import II

from stk_nmt.core import AGGREGATES, SMOOTHERS, STk, build_aggregate, kth_largest, select_valid

from .lam_update import lam_gradient, mean_over_processes

logger = logging.getLogger(__name__)

DEFAULT_K_RATIO = 0.96  # the paper's translation setting (k/n over target tokens)
LAM_OPTIMIZERS = ("sgd", "fairseq")


@dataclass
class AggregateConfig(FairseqDataclass):
    """Aggregation flags shared by every criterion of this package (`stk_k_ratio` -> --stk-k-ratio)."""

    stk_aggregate: ChoiceEnum(list(AGGREGATES)) = field(
        default="stk",
        metadata={"help": "how token losses are aggregated over the batch's non-padding tokens: "
                  "average (= plain mean), maximum, atk (mean of the k largest, exact), matk (hinge "
                  "lambda-form), stk (smoothed lambda-form, Xia et al. 2024)"},
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
        metadata={"help": "sgd: the criterion updates lam itself by SGD at --stk-lam-lr on every "
                  "training batch (no lr schedule, warm-up, weight decay or clipping; fairseq's "
                  "optimizer sees a zero gradient for lam); fairseq: lam is an ordinary parameter "
                  "of fairseq's optimizer (model lr schedule, weight decay, clipping)"},
    )
    stk_lam_lr: float = field(
        default=1.0,
        metadata={"help": "learning rate of lam with --stk-lam-optimizer sgd (constant; lam moves by at "
                  "most lr * k/n down and lr * (1 - k/n) up per training batch)"},
    )
    sentence_avg: bool = II("optimization.sentence_avg")


def resolve_k_args(cfg: AggregateConfig) -> Tuple[Optional[int], Optional[float]]:
    """(k, k_ratio) from the flags: exactly one; the paper's ratio when neither is given."""
    if cfg.stk_k is not None and cfg.stk_k_ratio is not None:
        raise ValueError(
            f"give --stk-k or --stk-k-ratio, not both: got stk_k={cfg.stk_k!r}, stk_k_ratio={cfg.stk_k_ratio!r}"
        )
    if cfg.stk_k is None and cfg.stk_k_ratio is None:
        return None, DEFAULT_K_RATIO
    return cfg.stk_k, cfg.stk_k_ratio


class AggregatedCriterion(FairseqCriterion):
    """Base of every criterion here: per-token losses from the subclass, aggregated by the core.

    Subclass contract (stable):

    * Config: a dataclass inheriting `AggregateConfig` (add the criterion's own fields; fairseq
      turns `my_field` into `--my-field`). Register with
      `@register_criterion("name", dataclass=MyConfig)` and a class name unique in fairseq.
    * `__init__(self, cfg, task)`: call `super().__init__(cfg, task)` first, then read the
      criterion's own fields from `cfg`. The base sets `self.aggregate` (a core module built by
      `stk_nmt.core.build_aggregate`; STk/MATk hold the trainable `lam`), `self.sentence_avg`,
      `self.padding_idx`.
    * `token_losses(model, net_output, sample) -> (losses, nll, mask)`, the one required method:
      `losses` float tensor of per-token losses (any shape, typically (B*T,)) that is aggregated
      and back-propagated; `nll` the per-token negative log-likelihood of the target, same shape,
      used only for the nll_loss/ppl logs (return None if the criterion has no such quantity);
      `mask` bool tensor, same shape, True for the tokens that count (non-padding, not in an
      ignored prefix). Values at masked-out positions are ignored.
    * Optional `extra_logging(model, net_output, sample) -> dict` of numbers or tensors that are
      summed over batches and processes (e.g. n_correct/total), and classmethod
      `reduce_extra_metrics(logging_outputs)` that turns them into metrics. Both default to
      nothing.

    What the base does in `forward`: runs the model; aggregates `losses` over `mask` (value A, a
    mean-like scalar over n valid tokens); returns loss = A * n, so that after fairseq divides by
    sample_size (ntokens, or sentences with --sentence-avg) the gradient scale equals
    label_smoothed_cross_entropy's, and the `average` aggregate reproduces its loss and gradients
    exactly. It logs loss, nll_loss, ppl, ntokens, nsentences, sample_size, and per batch the
    aggregate's k, the k-th largest valid token loss (`kth_loss`) and lam (lambda-form
    aggregates), in nats. With --stk-lam-optimizer sgd it also updates lam (see `lam_update`).
    """

    def __init__(self, cfg: AggregateConfig, task):
        super().__init__(task)
        self.sentence_avg = cfg.sentence_avg
        self.k, self.k_ratio = resolve_k_args(cfg)
        self.lam_optimizer = str(cfg.stk_lam_optimizer)
        if self.lam_optimizer not in LAM_OPTIMIZERS:
            raise ValueError(f"stk_lam_optimizer must be one of {LAM_OPTIMIZERS}, got {self.lam_optimizer!r}")
        self.lam_lr = cfg.stk_lam_lr
        if self.lam_optimizer == "sgd" and not (math.isfinite(self.lam_lr) and self.lam_lr > 0):
            raise ValueError(f"stk_lam_lr must be a finite number > 0, got stk_lam_lr={self.lam_lr!r}")
        self.aggregate = build_aggregate(
            str(cfg.stk_aggregate), k=self.k, k_ratio=self.k_ratio, delta=cfg.stk_delta,
            smoother=str(cfg.stk_smoother), lam_init=cfg.stk_lam_init,
        )
        if self.lam_module is not None:
            # A one-element 1-D lam instead of the core's 0-dim one: fairseq's legacy_ddp all-reduce
            # slices every gradient, which raises IndexError on a criterion whose only parameter is
            # 0-dim. The core accepts any one-element lam.
            self.lam_module.lam = torch.nn.Parameter(self.lam_module.lam.detach().reshape(1))
        if self.lam_module is not None and self.lam_optimizer == "sgd":
            # The value the criterion's own SGD maintains. Not persistent: state_dict() writes it
            # into aggregate.lam, so checkpoints look the same whichever rule trained lam.
            self.register_buffer("lam_value", self.lam_module.lam.detach().clone(), persistent=False)
            # fairseq's optimizer sees a zero gradient for lam (no step, no clipping share).
            self.lam_module.lam.register_hook(torch.zeros_like)
            self._register_state_dict_hook(_write_lam_value)

    # ---- the subclass interface -------------------------------------------------------------
    def token_losses(self, model, net_output, sample):
        raise NotImplementedError("a criterion must implement token_losses(model, net_output, sample)")

    def extra_logging(self, model, net_output, sample) -> Dict[str, Any]:
        return {}

    @classmethod
    def reduce_extra_metrics(cls, logging_outputs: List[Dict[str, Any]]) -> None:
        pass

    # ---- lam -------------------------------------------------------------------------------
    @property
    def lam_module(self) -> Optional[STk]:
        """The STk/MATk aggregate holding lam, or None for aggregates without one."""
        return self.aggregate if isinstance(self.aggregate, STk) else None

    def _apply(self, fn, recurse=True):
        # lam_value stays fp32 under .half() like lam itself (the core keeps lam fp32).
        out = super()._apply(fn, recurse)
        if hasattr(self, "lam_value"):
            self.lam_value = self.lam_value.float()
        return out

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        """Accept None: fairseq stores None for a criterion without parameters, so warm-starting from
        a label_smoothed_cross_entropy checkpoint keeps lam fresh (initialised on the first batch)."""
        if state_dict is None:
            logger.info("checkpoint has no criterion state: lam starts fresh")
            return torch.nn.modules.module._IncompatibleKeys([], [])
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        if hasattr(self, "lam_value"):
            self.lam_value.copy_(self.lam_module.lam.detach())
        return result

    def _lam_by_sgd(self) -> bool:
        return hasattr(self, "lam_value")

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, model, sample, reduce=True):
        """Returns (loss, sample_size, logging_output) like every fairseq criterion."""
        if not reduce:
            raise ValueError("reduce=False is not supported: a top-k aggregate has no per-token form")
        net_output = model(**sample["net_input"])
        losses, nll, mask = self.token_losses(model, net_output, sample)
        lam_module = self.lam_module
        if self._lam_by_sgd() and bool(lam_module.lam_initialized):
            lam_module.lam.data.copy_(self.lam_value)  # undo whatever fairseq's optimizer did
        valid = select_valid(losses, mask)  # masked once here, not again inside the aggregate
        value = self.aggregate(valid)
        n, k = self.aggregate.last_n, self.aggregate.last_k
        valid = valid.detach()
        if self._lam_by_sgd() and self.training:
            self._sgd_step(valid, k)
        loss = value * n
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
            "agg_batches": 1,
            "agg_k": k,
            "agg_n": n,
            "kth_loss": kth_largest(valid, k),
        }
        if nll is not None:
            logging_output["nll_loss"] = torch.where(mask, nll.detach().float(), 0.0).sum()
        if lam_module is not None:
            logging_output["lam"] = lam_module.lam.detach().float().reshape(()).clone()
        logging_output.update(self.extra_logging(model, net_output, sample))
        return loss, sample_size, logging_output

    @torch.no_grad()
    def _sgd_step(self, valid: torch.Tensor, k: int) -> None:
        agg = self.lam_module
        grad = lam_gradient(valid, agg.lam.detach(), k, smoother=agg.smoother, delta=agg.delta)
        grad = mean_over_processes(grad)
        self.lam_value.copy_(agg.lam.detach().float() - self.lam_lr * grad)

    # ---- logging -------------------------------------------------------------------------------
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        def total(key):
            return utils.item(sum(log.get(key, 0) for log in logging_outputs))

        loss_sum, sample_size, ntokens = total("loss"), total("sample_size"), total("ntokens")
        metrics.log_scalar("loss", loss_sum / sample_size / math.log(2), sample_size, round=3)
        if any("nll_loss" in log for log in logging_outputs):
            metrics.log_scalar("nll_loss", total("nll_loss") / ntokens / math.log(2), ntokens, round=3)
            metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["nll_loss"].avg))
        batches = total("agg_batches")
        if batches > 0:
            # Means over batches (and processes) of per-batch values, in nats.
            metrics.log_scalar("k", total("agg_k") / batches, batches, round=1)
            metrics.log_scalar("kth_loss", total("kth_loss") / batches, batches, round=4)
            if any("lam" in log for log in logging_outputs):
                metrics.log_scalar("lam", total("lam") / batches, batches, round=4)
        cls.reduce_extra_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def log_percentages(logging_outputs, total_key: str = "total", **count_keys: str) -> None:
    """Log the summed `total_key` once and, for each name=count_key, the summed count and a derived
    metric name = 100 * count / total (how label_smoothed_cross_entropy logs its accuracy)."""
    total = utils.item(sum(log.get(total_key, 0) for log in logging_outputs))
    if total <= 0:
        return
    metrics.log_scalar(total_key, total)
    for name, count_key in count_keys.items():
        metrics.log_scalar(count_key, utils.item(sum(log.get(count_key, 0) for log in logging_outputs)))
        metrics.log_derived(
            name,
            lambda meters, count_key=count_key: round(meters[count_key].sum * 100.0 / meters[total_key].sum, 3)
            if meters[total_key].sum > 0
            else float("nan"),
        )


def _write_lam_value(module: AggregatedCriterion, state_dict, prefix, local_metadata):
    """State-dict hook: the saved lam is the value the criterion's own SGD maintains."""
    key = prefix + "aggregate.lam"
    if key in state_dict and bool(module.lam_module.lam_initialized):
        state_dict[key] = module.lam_value.detach().clone()
    return state_dict
