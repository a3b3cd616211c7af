"""`stk_label_smoothed_cross_entropy` and its short name `stk`: fairseq's label-smoothed token
losses aggregated over the batch's non-padding target tokens (ST_k by default)."""


from dataclasses import dataclass, field

import torch
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

from .aggregated import AggregateConfig, AggregatedCriterion, log_percentages


@dataclass
class STkLabelSmoothedCrossEntropyConfig(AggregateConfig):
    # The same flags, names and defaults as fairseq's label_smoothed_cross_entropy.
    label_smoothing: float = field(
        default=0.0, metadata={"help": "epsilon for label smoothing, 0 means no label smoothing"}
    )
    report_accuracy: bool = field(default=False, metadata={"help": "report accuracy metric"})
    ignore_prefix_size: int = field(default=0, metadata={"help": "Ignore first N tokens"})


@register_criterion("stk_label_smoothed_cross_entropy", dataclass=STkLabelSmoothedCrossEntropyConfig)
class STkLabelSmoothedCrossEntropyCriterion(AggregatedCriterion):
    """Label-smoothed cross-entropy per target token (fairseq's own function), then the aggregate."""

    def __init__(self, cfg: STkLabelSmoothedCrossEntropyConfig, task):
        super().__init__(cfg, task)
        if not 0.0 <= cfg.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got label_smoothing={cfg.label_smoothing!r}")
        if cfg.ignore_prefix_size < 0:
            raise ValueError(f"ignore_prefix_size must be >= 0, got ignore_prefix_size={cfg.ignore_prefix_size!r}")
        self.eps = cfg.label_smoothing
        self.ignore_prefix_size = cfg.ignore_prefix_size
        self.report_accuracy = cfg.report_accuracy

    def get_lprobs_and_target(self, model, net_output, sample):
        lprobs = model.get_normalized_probs(net_output, log_probs=True)
        target = model.get_targets(sample, net_output)
        if self.ignore_prefix_size > 0:
            lprobs = lprobs[:, self.ignore_prefix_size :, :].contiguous()
            target = target[:, self.ignore_prefix_size :].contiguous()
        return lprobs.view(-1, lprobs.size(-1)), target.view(-1)

    def token_losses(self, model, net_output, sample):
        lprobs, target = self.get_lprobs_and_target(model, net_output, sample)
        loss, nll = label_smoothed_nll_loss(lprobs, target, self.eps, ignore_index=self.padding_idx, reduce=False)
        return loss.view(-1), nll.view(-1), target.ne(self.padding_idx)

    def extra_logging(self, model, net_output, sample):
        if not self.report_accuracy:
            return {}
        lprobs, target = self.get_lprobs_and_target(model, net_output, sample)
        mask = target.ne(self.padding_idx)
        n_correct = torch.sum(lprobs.argmax(1).masked_select(mask).eq(target.masked_select(mask)))
        return {"n_correct": utils.item(n_correct.data), "total": utils.item(mask.sum().data)}

    @classmethod
    def reduce_extra_metrics(cls, logging_outputs) -> None:
        log_percentages(logging_outputs, accuracy="n_correct")


@register_criterion("stk", dataclass=STkLabelSmoothedCrossEntropyConfig)
class STkCriterion(STkLabelSmoothedCrossEntropyCriterion):
    """`--criterion stk`: the short name of stk_label_smoothed_cross_entropy (same loss, flags and
    defaults). fairseq requires a distinct class per registered name, so the two names differ only
    in the criterion class name recorded in checkpoints (switching names on resume needs
    --reset-optimizer)."""
