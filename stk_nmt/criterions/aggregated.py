"""Shared base of the fairseq criteria: an individual token loss + a core aggregate (the forward).

Every criterion of this package is `AggregatedCriterion` + one method, `token_losses`, that says
what the loss of each target token is. The aggregation over the batch's non-padding tokens (any
aggregate of the core's registry: average, maximum, AT_k, MAT_k, ST_k, or one registered later),
the scaling fairseq expects and the logged fields live here, once. The flags and their checks are
in aggregate_config.py, lam's lifecycle (first value, own SGD, checkpoints, range warning) in
lam_update.py.
"""

import math
from typing import Any, Dict, List, Optional

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion
from fairseq.logging import metrics

from stk_nmt.core import get_aggregate, rank_masked
from stk_nmt.core.aggregates import lam_gradient_sum

from .aggregate_config import (  # noqa: F401  (importable from here, where they were before the split)
    ALWAYS_AVERAGE,
    LAM_OPTIMIZERS,
    AggregateConfig,
    check_aggregate_flags,
    resolve_k_args,
    warn_ignored_flags,
)
from .lam_update import LamGradientTap, LamLifecycle


class AggregatedCriterion(LamLifecycle, FairseqCriterion):
    """Base of every criterion here: per-token losses from the subclass, aggregated by the core.

    Subclass contract (stable):

    * Config: a dataclass inheriting `AggregateConfig` (add the criterion's own fields; fairseq
      turns `my_field` into `--my-field`). Register with
      `@register_criterion("name", dataclass=MyConfig)` and a class name unique in fairseq.
    * `__init__(self, cfg, task)`: call `super().__init__(cfg, task)` first, then read the
      criterion's own fields from `cfg`. The base sets `self.kind` (the registry's aggregate,
      stk_nmt.core.get_aggregate), `self.aggregate` (its module, kind.build(); the lambda forms
      STk/MATk, subclasses of the core's LambdaForm, hold the trainable `lam`),
      `self.sentence_avg`, `self.padding_idx`.
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
        self.kind = get_aggregate(self.aggregate_name)  # checked by check_aggregate_flags
        self.aggregate = self.kind.build(
            k=self.k, k_ratio=self.k_ratio, delta=cfg.stk_delta,
            smoother=str(cfg.stk_smoother), lam_init=cfg.stk_lam_init, clip_k=True,
        )
        self._setup_lam(cfg)

    # ---- the subclass interface -------------------------------------------------------------
    def token_losses(self, model, net_output, sample):
        raise NotImplementedError("a criterion must implement token_losses(model, net_output, sample)")

    def extra_logging(self, model, net_output, sample) -> Dict[str, Any]:
        return {}

    @classmethod
    def reduce_extra_metrics(cls, logging_outputs: List[Dict[str, Any]]) -> None:
        pass

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
        # n, the aggregate's k, one sort of the token losses (for AT_k and the logged k-th largest
        # loss): the core's masked path, shared with the Hugging Face loss.
        batch = rank_masked(self.kind, losses, mask, self.k, self.k_ratio)
        n, k, clipped, kth, ranked = batch.n, batch.k, batch.clipped, batch.kth, batch.ranked
        lam_module, lam = self.lam_module, None
        if lam_module is not None:
            lam = lam_module.lam
            if not lam_module.lam_ready:
                self._initialize_lam(ranked, k, training)
            elif self._lam_by_sgd():
                lam.data.copy_(self.lam_value)
            if not lam_module.lam_ready:
                lam = kth  # before the first training batch: this batch's k-th largest, not stored
        loss = batch.total(losses, mask, lam, smoother=getattr(lam_module, "smoother", "srelu"),
                           delta=getattr(lam_module, "delta", 0.01), averaged=averaged)
        if lam_module is not None and training and lam_module.lam_ready:
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
