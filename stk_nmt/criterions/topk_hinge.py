"""`topk_hinge` and `imbalanced_topk_hinge`: smoothed top-K hinge token losses (Garcin et al. 2022),
optionally mixed with label-smoothed cross-entropy, then any core aggregate (ST_k by default).

Per target token t with decoder logits s_t over the target vocabulary:

    l_t = (1 - mix) * hinge_t + mix * label_smoothed_ce_t        mix = --topk-ce-mix

The hinge reads the decoder's logits (net_output[0]). log_softmax shifts every logit of a row by
the same amount, and the hinge compares two scores of one row, so hinge(log-probs) = hinge(logits)
with the same gradient w.r.t. the logits; the logits save a softmax in the hinge's backward.

Why a cross-entropy mix by default (0.5): beam search ranks hypotheses by summed log-probabilities.
The top-K hinge is zero as soon as the reference token is inside the top K with a margin, so on its
own it neither orders the K best tokens nor calibrates their probabilities, which is what beam
search needs. --topk-ce-mix 0 trains on the pure hinge (a top-K classifier, not a good decoder).
"""

import logging
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
from fairseq.criterions import register_criterion
from fairseq.dataclass import ChoiceEnum

from stk_nmt.core import BalancedTopKHinge, ImbalancedTopKHinge
from stk_nmt.core.defaults import IMBALANCED_EPSILON, IMBALANCED_MAX_M, IMBALANCED_SCALE, TOPK_EPSILON, TOPK_K, TOPK_SAMPLES
from stk_nmt.core.selection import select_kth_largest

from .aggregated import AggregatedCriterion, log_percentages
from .label_smoothed import STkLabelSmoothedCrossEntropyConfig, label_smoothed_token_losses, read_label_smoothing_flags

logger = logging.getLogger(__name__)


@dataclass
class TopKHingeConfig(STkLabelSmoothedCrossEntropyConfig):
    # Inherited (the config only, not the criterion): the aggregate flags (--stk-aggregate,
    # --stk-k-ratio, ...) and fairseq's --label-smoothing / --ignore-prefix-size / --report-accuracy
    # for the cross-entropy part.
    topk_k: int = field(default=TOPK_K, metadata={"help": "K of the top-K hinge (the K of top-K accuracy); 1 <= K < vocabulary size"})
    topk_eps: float = field(default=TOPK_EPSILON, metadata={"help": "noise scale epsilon of the perturbed top-K operator (0 = the hard calibrated hinge)"})
    topk_samples: int = field(default=TOPK_SAMPLES, metadata={"help": "S, noise draws per token"})
    topk_ce_mix: float = field(
        default=0.5,
        metadata={"help": "token loss = (1 - mix) * top-K hinge + mix * label-smoothed cross-entropy; "
                  "mix in [0, 1]; 0 = pure hinge (no calibrated probabilities for beam search)"},
    )
    topk_chunk_elements: Optional[int] = field(
        default=None,
        metadata={"help": "bound on each of the two (tokens, vocab, S) noise work buffers, in elements (default 2**18 on the CPU, 2**24 on a GPU)"},
    )
    topk_hinge_noise: ChoiceEnum(["auto", "dense", "truncated", "lazy"]) = field(
        default="auto",
        metadata={"help": "dense: noise on every vocabulary entry (pytopk's operator and stream); lazy: noise only "
                  "where it can matter, exact in distribution; truncated: noise only on the entries within a "
                  "margin of each token's (K+1)-th logit, exact except with probability --topk-hinge-tolerance; "
                  "auto: on the CPU lazy on the tokens with few logits near their (K+1)-th and dense on the "
                  "others, on a GPU dense (no host synchronisation; see docs/topk-hinge.md)"},
    )
    topk_hinge_tolerance: float = field(
        default=1e-6,
        metadata={"help": "truncated: bound on the probability, per token and update, that truncation changes "
                  "the token's hinge (sets the candidate margin)"},
    )


@dataclass
class ImbalancedTopKHingeConfig(TopKHingeConfig):
    # The imbalanced loss's own defaults, the same as the core's and the vision CLI's (core/defaults.py).
    topk_eps: float = field(
        default=IMBALANCED_EPSILON,
        metadata={"help": "noise scale epsilon of the perturbed top-K operator (0 = the hard calibrated hinge)"},
    )
    topk_max_m: float = field(
        default=IMBALANCED_MAX_M, metadata={"help": "margin of the rarest target token; m_c = max_m * (n_min / n_c)^(1/4)"}
    )
    topk_scale: float = field(
        default=IMBALANCED_SCALE,
        metadata={"help": "scale of the imbalanced hinge; the default is the reference's (pytopk), which assumes "
                  "a cosine last layer: pass 1 for a decoder's plain logits (a warning says so otherwise)"},
    )


# The core's argument names -> this criterion's flags: the core's checks name the flags in their
# errors (core/arguments.py), as typed.
CORE_ARGUMENT_FLAGS = {"epsilon": "--topk-eps", "n_samples": "--topk-samples", "chunk_elements": "--topk-chunk-elements",
                       "max_m": "--topk-max-m", "scale": "--topk-scale", "k": "--topk-k",
                       "noise_mode": "--topk-hinge-noise", "tolerance": "--topk-hinge-tolerance"}


def dictionary_class_counts(dictionary) -> Tuple[torch.Tensor, int]:
    """Per-symbol training counts for the class margins, from a fairseq Dictionary.

    fairseq stores the token counts of dict.<tgt>.txt in dictionary.count, but not those of its
    special symbols (bos, pad, eos, unk: count 1 each, although eos ends every sentence) and gives
    its padding entries ("madeupword0000"...) count 0. Specials get the largest count (the smallest
    margin); zero-count entries, which never occur as targets, get the smallest positive count.
    Returns (counts as float64, number of entries so replaced).
    """
    counts = torch.tensor(dictionary.count, dtype=torch.float64)
    regular = counts[dictionary.nspecial :]
    positive = regular[regular > 0]
    if positive.numel() == 0:
        raise ValueError(
            f"the target dictionary has no symbol with a count > 0 ({len(dictionary)} symbols): "
            "imbalanced margins need the counts of dict.<tgt>.txt"
        )
    counts[: dictionary.nspecial] = positive.max()
    zero = regular <= 0
    regular[zero] = positive.min()
    return counts, dictionary.nspecial + int(zero.sum())


@register_criterion("topk_hinge", dataclass=TopKHingeConfig)
class TopKHingeCriterion(AggregatedCriterion):
    """Balanced smoothed top-K hinge over the target vocabulary (+ optional label-smoothed CE mix).

    Logs loss, nll_loss, ppl, accuracy (top-1) and topk_accuracy (the reference token among the
    K highest logits, K = --topk-k), besides the aggregate's k, kth_loss and lam.
    """

    def __init__(self, cfg: TopKHingeConfig, task):
        super().__init__(cfg, task)
        read_label_smoothing_flags(self, cfg)  # the cross-entropy part: shared with the stk criterion
        self.vocab_size = len(task.target_dictionary)
        if not isinstance(cfg.topk_k, int) or not 1 <= cfg.topk_k < self.vocab_size:
            raise ValueError(
                f"--topk-k must be an integer in [1, {self.vocab_size - 1}] (below the target vocabulary size "
                f"{self.vocab_size}), got --topk-k {cfg.topk_k}"
            )
        if not 0.0 <= cfg.topk_ce_mix <= 1.0:
            raise ValueError(f"--topk-ce-mix must be in [0, 1], got --topk-ce-mix {cfg.topk_ce_mix}")
        self.topk_k, self.ce_mix = cfg.topk_k, cfg.topk_ce_mix
        self.hinge = self.build_hinge(cfg, task)

    def build_hinge(self, cfg: TopKHingeConfig, task) -> BalancedTopKHinge:
        return BalancedTopKHinge(
            cfg.topk_k, cfg.topk_eps, cfg.topk_samples, reduction="none", chunk_elements=cfg.topk_chunk_elements,
            noise_mode=str(cfg.topk_hinge_noise), tolerance=cfg.topk_hinge_tolerance, argument_names=CORE_ARGUMENT_FLAGS,
        )

    def logits_and_target(self, model, net_output, sample):
        """The decoder's logits (N, V) and targets (N,), after --ignore-prefix-size."""
        logits = net_output[0]
        if logits.size(-1) != self.vocab_size:
            raise ValueError(
                f"the top-K hinge needs the model's logits over the target vocabulary ({self.vocab_size}), "
                f"got net_output[0] of shape {tuple(logits.shape)} (adaptive softmax is not supported)"
            )
        target = model.get_targets(sample, net_output)
        if self.ignore_prefix_size > 0:
            logits = logits[:, self.ignore_prefix_size :, :]
            target = target[:, self.ignore_prefix_size :]
        return logits.reshape(-1, self.vocab_size), target.reshape(-1)

    def token_losses(self, model, net_output, sample):
        # The cross-entropy part and the nll log: fairseq's own functions, as in the stk criterion;
        # with mix 0 it is only logged, so no graph is kept for it.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.ce_mix > 0):
            ce, nll, mask = label_smoothed_token_losses(self, model, net_output, sample)
        logits, target = self.logits_and_target(model, net_output, sample)
        hinge = torch.zeros(target.shape, dtype=torch.float32, device=target.device)
        # Padding rows are skipped: drawing (V, S) noise for them would be wasted. The hinge reads
        # the valid rows itself and writes its gradient straight into the logits' (N, V) gradient,
        # without autograd's copy of those rows (a zero (N, V) tensor and an index_put backward).
        rows = mask.nonzero().squeeze(1)
        if rows.numel():
            hinge = hinge.index_put((rows,), self.hinge(logits, target[rows], rows=rows).float())
        else:  # padding only: nothing to learn; an empty sum keeps the logits in the graph (zero gradient)
            hinge = hinge + logits[:0].sum().float()
        if self.ce_mix == 0:
            return hinge, nll, mask
        return (1.0 - self.ce_mix) * hinge + self.ce_mix * ce.float(), nll, mask

    @torch.no_grad()
    def extra_logging(self, model, net_output, sample):
        logits, target = self.logits_and_target(model, net_output, sample)
        mask = target.ne(self.padding_idx)
        # The reference token is in the top j iff fewer than j logits beat it, i.e. iff its logit is
        # at least the j-th largest (a tie counts in its favour): a max and the core's k-th largest
        # selection, cheaper than counting the logits above it over the whole (tokens, vocabulary).
        reference = logits.gather(1, target[:, None])
        top1 = reference >= logits.amax(dim=1, keepdim=True)
        topk = reference >= select_kth_largest(logits, self.topk_k)[:, None]
        # Tensors: summed across workers and read only when a log line is printed (no read-back
        # in the training step).
        return {
            "n_correct": (top1.squeeze(1) & mask).sum(),
            "n_correct_topk": (topk.squeeze(1) & mask).sum(),
            "total": mask.sum(),
        }

    @classmethod
    def reduce_extra_metrics(cls, logging_outputs) -> None:
        log_percentages(logging_outputs, accuracy="n_correct", topk_accuracy="n_correct_topk")


@register_criterion("imbalanced_topk_hinge", dataclass=ImbalancedTopKHingeConfig)
class ImbalancedTopKHingeCriterion(TopKHingeCriterion):
    """Imbalanced smoothed top-K hinge: per-token margins from the target dictionary's counts."""

    def build_hinge(self, cfg: ImbalancedTopKHingeConfig, task) -> ImbalancedTopKHinge:
        if cfg.topk_scale != 1:
            # pytopk's own caution: its scale assumes normalisation, "if not the case, set scale to 1".
            logger.warning(
                f"imbalanced_topk_hinge: --topk-scale {cfg.topk_scale:g} (the reference's default is "
                f"{IMBALANCED_SCALE:g}) assumes a cosine (normalised) last layer, but the hinge reads the "
                f"decoder's plain logits: its gradient is then {cfg.topk_scale:g} times that of scale 1 and "
                f"outweighs the cross-entropy part; pass --topk-scale 1 for plain logits"
            )
        counts, replaced = dictionary_class_counts(task.target_dictionary)
        logger.info(
            f"imbalanced top-K hinge: margins from {len(counts)} target dictionary counts "
            f"({replaced} special or zero-count entries given the largest / smallest count)"
        )
        return ImbalancedTopKHinge(
            cfg.topk_k, cfg.topk_eps, max_m=cfg.topk_max_m, class_counts=counts, scale=cfg.topk_scale,
            n_samples=cfg.topk_samples, reduction="none", chunk_elements=cfg.topk_chunk_elements,
            noise_mode=str(cfg.topk_hinge_noise), tolerance=cfg.topk_hinge_tolerance, argument_names=CORE_ARGUMENT_FLAGS,
        )
