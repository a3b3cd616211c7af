"""`stk_label_smoothed_cross_entropy` and its short name `stk`: fairseq's label-smoothed token
losses aggregated over the batch's non-padding target tokens (ST_k by default).

A drop-in for fairseq's label_smoothed_cross_entropy: its config dataclass (the same flags,
names and defaults), its get_lprobs_and_target (--ignore-prefix-size slicing) and compute_accuracy,
and its per-token label_smoothed_nll_loss are fairseq's own objects, not copies, so they follow
whatever the installed fairseq does.
"""


from dataclasses import dataclass

from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
    label_smoothed_nll_loss,
)

from .aggregated import AggregateConfig, AggregatedCriterion, log_percentages


@dataclass
class STkLabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig, AggregateConfig):
    """fairseq's --label-smoothing / --report-accuracy / --ignore-prefix-size + the --stk-* flags."""


def read_label_smoothing_flags(criterion, cfg: LabelSmoothedCrossEntropyCriterionConfig) -> None:
    """Check fairseq's label-smoothing flags and set criterion.eps, .ignore_prefix_size and
    .report_accuracy, the attributes fairseq's get_lprobs_and_target / compute_accuracy read.

    Shared by every criterion with a label-smoothed cross-entropy part (here and the top-K hinge)."""
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ValueError(f"--label-smoothing must be in [0, 1), got --label-smoothing {cfg.label_smoothing}")
    if cfg.ignore_prefix_size < 0:
        raise ValueError(f"--ignore-prefix-size must be >= 0, got --ignore-prefix-size {cfg.ignore_prefix_size}")
    criterion.eps = cfg.label_smoothing
    criterion.ignore_prefix_size = cfg.ignore_prefix_size
    criterion.report_accuracy = cfg.report_accuracy


def label_smoothed_token_losses(criterion, model, net_output, sample):
    """(loss, nll, mask), flat, per target token: fairseq's own get_lprobs_and_target and
    label_smoothed_nll_loss, reading criterion.eps / .ignore_prefix_size / .padding_idx."""
    lprobs, target = LabelSmoothedCrossEntropyCriterion.get_lprobs_and_target(criterion, model, net_output, sample)
    loss, nll = label_smoothed_nll_loss(lprobs, target, criterion.eps, ignore_index=criterion.padding_idx, reduce=False)
    return loss.view(-1), nll.view(-1), target.ne(criterion.padding_idx)


@register_criterion("stk_label_smoothed_cross_entropy", dataclass=STkLabelSmoothedCrossEntropyConfig)
class STkLabelSmoothedCrossEntropyCriterion(AggregatedCriterion):
    """Label-smoothed cross-entropy per target token (fairseq's own functions), then the aggregate."""

    # fairseq's methods, looked up at call time (they read self.ignore_prefix_size, self.padding_idx).
    def get_lprobs_and_target(self, model, net_output, sample):
        return LabelSmoothedCrossEntropyCriterion.get_lprobs_and_target(self, model, net_output, sample)

    def compute_accuracy(self, model, net_output, sample):
        return LabelSmoothedCrossEntropyCriterion.compute_accuracy(self, model, net_output, sample)

    def __init__(self, cfg: STkLabelSmoothedCrossEntropyConfig, task):
        super().__init__(cfg, task)
        read_label_smoothing_flags(self, cfg)

    def token_losses(self, model, net_output, sample):
        return label_smoothed_token_losses(self, model, net_output, sample)

    def extra_logging(self, model, net_output, sample):
        if not self.report_accuracy:
            return {}
        # As label_smoothed_cross_entropy does (including its two read-backs).
        n_correct, total = self.compute_accuracy(model, net_output, sample)
        return {"n_correct": utils.item(n_correct.data), "total": utils.item(total.data)}

    @classmethod
    def reduce_extra_metrics(cls, logging_outputs) -> None:
        log_percentages(logging_outputs, accuracy="n_correct")


@register_criterion("stk", dataclass=STkLabelSmoothedCrossEntropyConfig)
class STkCriterion(STkLabelSmoothedCrossEntropyCriterion):
    """`--criterion stk`: the short name of stk_label_smoothed_cross_entropy (same loss, flags and
    defaults). fairseq requires a distinct class per registered name, so the two names differ only
    in the criterion class name recorded in checkpoints (switching names on resume needs
    --reset-optimizer)."""
