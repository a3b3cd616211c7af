"""Shared base of the fairseq criteria: an individual token loss + a core aggregate.

Every criterion of this package is `AggregatedCriterion` + one method, `token_losses`, that says
what the loss of each target token is. The aggregation over the batch's non-padding tokens
(average, maximum, AT_k, MAT_k, ST_k), the trainable threshold lam, its update rule, the scaling
fairseq expects, checkpoint handling and the logged fields live here, once.

No `from __future__ import annotations` in modules with config dataclasses: fairseq builds its
argparse flags from the field types and needs real types, not strings.
"""

import dataclasses
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

from stk_nmt.core import (
    AGGREGATES,
    SMOOTHERS,
    LambdaForm,
    build_aggregate,
    masked_kth_largest,
    masked_sorted,
    masked_total,
    masked_total_partly_averaged,
    resolve_k_tensor,
)
from stk_nmt.core.aggregates import (
    DEFAULT_K_RATIO,
    check_settings,
    lam_gradient_sum,
    lam_sgd_step,
    resolve_k_settings,
)
from stk_nmt.core.aggregates.factory import ignored_arguments
from stk_nmt.core.aggregates.lam_init import first_lam, lam_is_set
from stk_nmt.core.precision import keep_fp32

from .lam_update import LamGradientTap, mark_pending

logger = logging.getLogger(__name__)

LAM_OPTIMIZERS = ("sgd", "fairseq")
ALWAYS_AVERAGE = ("none", "eos")  # which target tokens bypass the top-k aggregate (--stk-always-average)
# lam outside the batch's loss range: checked every LAM_RANGE_CHECK_EVERY training batches (one
# read-back then, none in between); warned about after LAM_RANGE_WARN_AFTER batches in a row, then
# at most once every LAM_RANGE_WARN_EVERY batches.
LAM_RANGE_CHECK_EVERY = 100
LAM_RANGE_WARN_AFTER = 100
LAM_RANGE_WARN_EVERY = 2000


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
    """Refuse invalid --stk-* flags, whatever the aggregate, naming the flag and value as typed."""
    check_settings(cfg, LAM_OPTIMIZERS)
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
    defaults = {f.name: f.default for f in dataclasses.fields(AggregateConfig)}

    def changed(field):  # the flag's value when it differs from its default, else None
        value = getattr(cfg, field)
        return None if str(value) == str(defaults[field]) else value

    flags = {"k": ("--stk-k", cfg.stk_k), "k_ratio": ("--stk-k-ratio", cfg.stk_k_ratio),
             "delta": ("--stk-delta", changed("stk_delta")), "smoother": ("--stk-smoother", changed("stk_smoother")),
             "lam_init": ("--stk-lam-init", cfg.stk_lam_init)}
    ignored = [flags[arg] for arg in ignored_arguments(name, {a: v for a, (_, v) in flags.items()}, smoother)]
    if name not in ("matk", "stk"):  # no lam: its update flags are the criterion's own
        ignored += [(flag, value) for flag, value in (
            ("--stk-lam-optimizer", changed("stk_lam_optimizer")), ("--stk-lam-lr", changed("stk_lam_lr")))
            if value is not None]
    if ignored:
        logger.warning(
            f"--stk-aggregate {name} does not use {', '.join(f'{flag} {value}' for flag, value in ignored)}: "
            f"{'that flag has' if len(ignored) == 1 else 'those flags have'} no effect"
            + (" (average and maximum use every token)" if name in ("average", "maximum") else "")
        )


def resolve_k_args(cfg: AggregateConfig) -> Tuple[Optional[int], Optional[float]]:
    """(k, k_ratio) from the flags: exactly one; the paper's ratio when neither is given."""
    return resolve_k_settings(cfg.stk_k, cfg.stk_k_ratio)


class AggregatedCriterion(FairseqCriterion):
    """Base of every criterion here: per-token losses from the subclass, aggregated by the core.

    Subclass contract (stable):

    * Config: a dataclass inheriting `AggregateConfig` (add the criterion's own fields; fairseq
      turns `my_field` into `--my-field`). Register with
      `@register_criterion("name", dataclass=MyConfig)` and a class name unique in fairseq.
    * `__init__(self, cfg, task)`: call `super().__init__(cfg, task)` first, then read the
      criterion's own fields from `cfg`. The base sets `self.aggregate` (a core module built by
      `stk_nmt.core.build_aggregate`; the lambda forms STk/MATk, subclasses of the core's
      LambdaForm, hold the trainable `lam`), `self.sentence_avg`, `self.padding_idx`.
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
    mean-like scalar over n valid tokens) and returns loss = A * n, so that after fairseq divides
    by sample_size (ntokens, or sentences with --sentence-avg) the gradient scale equals
    label_smoothed_cross_entropy's, and the `average` aggregate reproduces its loss and gradients
    exactly. The computation is masked with n and k as device tensors: it reads nothing back
    from the device (no host-device synchronisation) and never raises on a NaN/inf token loss,
    which reaches fairseq (its fp16 loss scaler then skips the step) as with
    label_smoothed_cross_entropy. A batch with fewer valid tokens than a count --stk-k uses
    k = n and is counted in the `k_clipped` log. It logs loss, nll_loss, ppl, ntokens,
    nsentences, sample_size, and per batch the aggregate's k, the k-th largest valid token loss
    (`kth_loss`) and lam (lambda-form aggregates), in nats. lam's lifecycle: docs/criteria.md.
    """

    def __init__(self, cfg: AggregateConfig, task):
        super().__init__(task)
        check_aggregate_flags(cfg)
        warn_ignored_flags(cfg)
        self.sentence_avg = cfg.sentence_avg
        self.k, self.k_ratio = resolve_k_args(cfg)
        self.aggregate_name = str(cfg.stk_aggregate)
        self.lam_optimizer = str(cfg.stk_lam_optimizer)
        self.lam_lr = cfg.stk_lam_lr
        self.always_average = str(cfg.stk_always_average)
        self.aggregate = build_aggregate(
            self.aggregate_name, k=self.k, k_ratio=self.k_ratio, delta=cfg.stk_delta,
            smoother=str(cfg.stk_smoother), lam_init=cfg.stk_lam_init, clip_k=True,
        )
        lam_module = self.lam_module
        if lam_module is not None:
            # A one-element 1-D lam instead of the core's 0-dim one: fairseq's legacy_ddp all-reduce
            # slices every gradient, which raises IndexError on a criterion whose only parameter is
            # 0-dim. The core accepts any one-element lam.
            lam_module.lam = torch.nn.Parameter(lam_module.lam.detach().reshape(1))
            # Python-side copy of lam_initialized, so that no training step reads the buffer back.
            self._lam_ready = cfg.stk_lam_init is not None
            # Consecutive training batches with lam below / above every valid token loss (item: the
            # degenerate-settings warning); device counters, read every LAM_RANGE_CHECK_EVERY batches.
            self.register_buffer("lam_outside_streak", torch.zeros(2, dtype=torch.long), persistent=False)
            self._train_batches = 0
            self._next_range_warning = 0
        if lam_module is not None and self.lam_optimizer == "sgd":
            # The value the criterion's own SGD maintains; lam is reset to it before every forward,
            # undoing whatever fairseq's optimizer wrote into lam (weight decay, fp16 master copy).
            # Not persistent: state_dict() writes it into aggregate.lam, so checkpoints look the
            # same whichever rule trained lam.
            self.register_buffer("lam_value", lam_module.lam.detach().clone(), persistent=False)
            # (sum over micro-batches of n * dST_k/dlam, sum of n) since the last optimizer step.
            self.register_buffer("lam_grad_accum", torch.zeros(2), persistent=False)
            # fairseq's optimizer sees a zero gradient for lam (no step, no clipping share).
            lam_module.lam.register_hook(torch.zeros_like)
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
    def lam_module(self) -> Optional[LambdaForm]:
        """The lambda-form aggregate (STk/MATk) holding lam, or None for aggregates without one."""
        return self.aggregate if isinstance(self.aggregate, LambdaForm) else None

    def _apply(self, fn, recurse=True):
        # lam_value and the accumulator stay fp32 under .half() like lam itself (the core keeps lam fp32).
        return keep_fp32(self, ("lam_value", "lam_grad_accum"), super()._apply, fn, recurse)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        """Accept None: fairseq stores None for a criterion without parameters, so warm-starting from
        a label_smoothed_cross_entropy checkpoint keeps lam fresh (initialised on the first training
        batch)."""
        if state_dict is None:
            logger.info("checkpoint has no criterion state: lam starts fresh")
            return torch.nn.modules.module._IncompatibleKeys([], [])
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        if self.lam_module is not None:
            self._lam_ready = bool(self.lam_module.lam_initialized)  # read once, at load time
        if hasattr(self, "lam_value"):
            self.lam_value.copy_(self.lam_module.lam.detach())
            self.lam_grad_accum.zero_()
        return result

    def _lam_by_sgd(self) -> bool:
        return hasattr(self, "lam_value")

    @torch.no_grad()
    def _initialize_lam(self, ranked: torch.Tensor, k: torch.Tensor, training: bool) -> None:
        """Before lam is set: keep a lam set by hand, or, on the first training batch, set lam to that
        batch's k-th largest valid token loss (the core's rule: core/aggregates/lam_init.py). One
        read-back per batch until lam is set (on the first training batch, the criterion's only one)."""
        agg = self.lam_module
        if training:
            value, ready = first_lam(agg.lam, masked_kth_largest(ranked, k))
        else:  # validation: no collective (ranks may see different numbers of batches), no initialisation
            value, ready = agg.lam.detach(), lam_is_set(agg.lam, agg.lam_initialized)
        if not bool(ready.all()):
            return  # unset, or non-finite everywhere (an fp16 overflow): lam stays unset, not poisoned
        agg.lam.data.copy_(value)
        agg.lam_initialized.fill_(True)
        if self._lam_by_sgd():
            self.lam_value.copy_(value)
        self._lam_ready = True

    def accumulate_lam_gradient(self, lam_grad_sum: torch.Tensor, count: torch.Tensor, loss_grad: torch.Tensor):
        """Called by LamGradientTap in the backward of one training batch's loss."""
        if self.lam_module.lam.grad is None:
            # The first backward since fairseq's zero_grad: a new update (or an AMP retry) begins.
            self.lam_grad_accum.zero_()
        # A dummy batch (loss multiplied by 0) or a non-finite batch contributes nothing.
        use = (loss_grad.reshape(()) != 0) & torch.isfinite(lam_grad_sum)
        zero = lam_grad_sum.new_zeros(())
        self.lam_grad_accum += torch.stack([torch.where(use, lam_grad_sum, zero), torch.where(use, count, zero)]).float()
        mark_pending(self)

    @torch.no_grad()
    def apply_lam_step(self) -> None:
        """One SGD step on lam with the accumulated gradient; called after an optimizer step."""
        if self.lam_module.lam.grad is None:
            # zero_grad ran after the last backward (fp16 overflow): that update was thrown away.
            self.lam_grad_accum.zero_()
            return
        lam_sgd_step(self.lam_value, self.lam_grad_accum, self.lam_lr)
        self.lam_module.lam.data.copy_(self.lam_value)
        self.lam_grad_accum.zero_()

    @torch.no_grad()
    def _track_lam_range(self, ranked: torch.Tensor, n: torch.Tensor, lam: torch.Tensor) -> None:
        """Count consecutive training batches with lam outside [min, max] of the valid losses."""
        lam = lam.detach().reshape(()).float()
        top = ranked[0]
        bottom = ranked.gather(0, torch.clamp(n - 1, min=0).reshape(1)).reshape(())
        outside = torch.stack([lam < bottom, lam > top]) & (n > 0)
        self.lam_outside_streak.copy_(torch.where(outside, self.lam_outside_streak + 1, 0))
        self._train_batches += 1
        if self._train_batches % LAM_RANGE_CHECK_EVERY == 0:
            self._warn_if_lam_degenerate()

    def _warn_if_lam_degenerate(self) -> None:
        below, above = self.lam_outside_streak.tolist()  # one read-back per LAM_RANGE_CHECK_EVERY batches
        if max(below, above) < LAM_RANGE_WARN_AFTER or self._train_batches < self._next_range_warning:
            return
        self._next_range_warning = self._train_batches + LAM_RANGE_WARN_EVERY
        lam = float(self.lam_module.lam.detach().reshape(()))
        change = ("--stk-lam-init, --stk-lam-lr" if self._lam_by_sgd()
                  else "--stk-lam-init, or --stk-lam-optimizer sgd (fairseq's optimizer moves lam by about --lr per update)")
        if below >= LAM_RANGE_WARN_AFTER:
            logger.warning(
                f"lam = {lam:.4g} has been below every token loss for the last {below} training batches: "
                f"ST_k has degenerated into the plain average of the token losses (every token selected). "
                f"Check {change} (a large --stk-lam-lr overshoots downwards)."
            )
        else:
            logger.warning(
                f"lam = {lam:.4g} has been above every token loss for the last {above} training batches: "
                f"no token is selected, ST_k is about (k/n) * lam and its gradients vanish (gnorm near 0). "
                f"Check {change} (unset --stk-lam-init starts at the first batch's k-th largest loss)."
            )

    def always_averaged(self, sample, mask: torch.Tensor) -> Optional[torch.Tensor]:
        """The valid tokens that bypass the aggregate (--stk-always-average), flat like mask; None for none."""
        if self.always_average == "none":
            return None
        target = sample["target"]
        prefix = getattr(self, "ignore_prefix_size", 0) or 0
        if prefix > 0:  # token_losses sliced the same prefix off (fairseq's get_lprobs_and_target)
            target = target[:, prefix:]
        target = target.reshape(-1)
        if target.numel() != mask.numel():
            raise ValueError(f"--stk-always-average {self.always_average}: the criterion's {mask.numel()} token "
                             f"losses do not line up with the {target.numel()} target tokens")
        return mask & target.eq(self.task.target_dictionary.eos())

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, model, sample, reduce=True):
        """Returns (loss, sample_size, logging_output) like every fairseq criterion."""
        if not reduce:
            raise ValueError("reduce=False is not supported: a top-k aggregate has no per-token form")
        net_output = model(**sample["net_input"])
        losses, nll, mask = self.token_losses(model, net_output, sample)
        losses, mask = losses.reshape(-1), mask.reshape(-1)
        # With --stk-always-average the aggregate (its k, sort, lam) sees only the other tokens.
        averaged = self.always_averaged(sample, mask)
        full_mask, mask = mask, mask if averaged is None else mask & ~averaged
        # lam is initialised and updated only by training batches: criterion and model in train
        # mode with gradients on (not validation, not a model left in eval mode).
        training = self.training and model.training and torch.is_grad_enabled()
        name = self.aggregate_name
        n = mask.sum()
        if name == "average":
            k, clipped = n, None
        elif name == "maximum":
            k, clipped = torch.ones_like(n), None
        else:
            k, clipped = resolve_k_tensor(n, self.k, self.k_ratio)
        # One sort of the (B*T) token losses, for AT_k and the logged k-th largest loss.
        ranked_graph = masked_sorted(losses if name == "atk" else losses.detach(), mask)
        kth = masked_kth_largest(ranked_graph, k)
        ranked = ranked_graph.detach()
        lam_module, lam = self.lam_module, None
        if lam_module is not None:
            lam = lam_module.lam
            if not self._lam_ready:
                self._initialize_lam(ranked, k, training)
            elif self._lam_by_sgd():
                lam.data.copy_(self.lam_value)
            if not self._lam_ready:
                lam = kth  # before the first training batch: this batch's k-th largest, not stored
        total_kwargs = dict(smoother=getattr(lam_module, "smoother", "srelu"), delta=getattr(lam_module, "delta", 0.01),
                            sorted_desc=ranked_graph if name == "atk" else None)
        if averaged is None:
            loss = masked_total(name, losses, mask, n, k, lam, **total_kwargs)
        else:
            loss = masked_total_partly_averaged(name, losses, full_mask, averaged, k, lam, **total_kwargs)
        if lam_module is not None and training and self._lam_ready:
            if self._lam_by_sgd():
                lam_grad_sum = lam_gradient_sum(losses, mask, lam, k, lam_module.smoother, lam_module.delta)
                loss = LamGradientTap.apply(loss, lam_grad_sum, n.to(lam_grad_sum.dtype), self)
            self._track_lam_range(ranked, n, lam)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
            "agg_batches": 1,
            "agg_k": k,
            "agg_n": n,
            "kth_loss": kth,
        }
        if clipped is not None and self.k is not None:
            logging_output["k_clipped"] = clipped.long()
        if nll is not None:
            logging_output["nll_loss"] = torch.where(full_mask, nll.detach().reshape(-1).float(), 0.0).sum()
        if lam is not None:
            logging_output["lam"] = lam.detach().float().reshape(()).clone()
        logging_output.update(self.extra_logging(model, net_output, sample))
        return loss, sample_size, logging_output

    # ---- logging -------------------------------------------------------------------------------
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        # Device tensors stay tensors: fairseq's meters read them back at log time, not per step.
        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        loss_sum = total("loss")
        sample_size, ntokens = utils.item(total("sample_size")), utils.item(total("ntokens"))
        metrics.log_scalar("loss", loss_sum / sample_size / math.log(2), sample_size, round=3)
        if any("nll_loss" in log for log in logging_outputs):
            metrics.log_scalar("nll_loss", total("nll_loss") / ntokens / math.log(2), ntokens, round=3)
            metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["nll_loss"].avg))
        batches = utils.item(total("agg_batches"))
        if batches > 0:
            # Means over batches (and processes) of per-batch values, in nats. No round=: fairseq
            # rounds a meter with .item() on every update (a read-back); unrounded tensor meters are
            # read only when a log line is printed.
            metrics.log_scalar("k", total("agg_k") / batches, batches)
            metrics.log_scalar("kth_loss", total("kth_loss") / batches, batches)
            if any("lam" in log for log in logging_outputs):
                metrics.log_scalar("lam", total("lam") / batches, batches)
            if any("k_clipped" in log for log in logging_outputs):
                # How many batches had fewer valid tokens than --stk-k (and used k = n), summed.
                metrics.log_scalar_sum("k_clipped", total("k_clipped"))
        cls.reduce_extra_metrics(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def log_percentages(logging_outputs, total_key: str = "total", **count_keys: str) -> None:
    """Log the summed `total_key` once and, for each name=count_key, the summed count and a derived
    metric name = 100 * count / total (how label_smoothed_cross_entropy logs its accuracy).

    The counts may be numbers or tensors; tensors are logged as they are, read only when a log
    line is printed (a count of zero tokens then shows nan)."""
    total = sum(log.get(total_key, 0) for log in logging_outputs)
    if not torch.is_tensor(total) and total <= 0:
        return
    metrics.log_scalar(total_key, total)
    for name, count_key in count_keys.items():
        metrics.log_scalar(count_key, sum(log.get(count_key, 0) for log in logging_outputs))
        metrics.log_derived(name, lambda meters, count_key=count_key: _percentage(meters[count_key].sum,
                                                                               meters[total_key].sum))


def _percentage(count, total):
    """100 * count / total rounded to 3 decimals, nan when total is 0. fairseq derives its meters
    every step: with tensor counts the result stays a tensor, read back only when printed."""
    if torch.is_tensor(count) or torch.is_tensor(total):
        return torch.round(torch.as_tensor(count, dtype=torch.float64) * 100.0 / total, decimals=3)
    return round(count * 100.0 / total, 3) if total > 0 else float("nan")


def _write_lam_value(module: AggregatedCriterion, state_dict, prefix, local_metadata):
    """State-dict hook: the saved lam is the value the criterion's own SGD maintains."""
    key = prefix + "aggregate.lam"
    if key in state_dict:
        state_dict[key] = module.lam_value.detach().clone()
    return state_dict
