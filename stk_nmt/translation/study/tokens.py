"""Which target tokens ST_k trains least: a trained model's per-token losses against its final lam.

ST_k weights a token loss l by the smoother's derivative, for SReLU w(l) = 0.5 (1 + x / sqrt(x^2 +
delta^2)) with x = l - lam: 0.5 at lam, falling towards 0 below it but never 0 (at lam - delta it is
still 0.146; with --stk-always-average eos an end-of-sentence token has weight 1 whatever its loss).
`weight_summary` gives the real weights: the mean weight and the share of tokens whose weight is below
each of WEIGHT_THRESHOLDS. `tokens_below_lam` loads a checkpoint in this process (CPU, eval mode: no dropout),
teacher-forces it over the first sentences of a subset, computes the same label-smoothed token
loss the criterion used (nats), and counts the tokens whose loss is below the saved lam, split into
end-of-sentence, punctuation-only subwords and the most frequent subwords of the dictionary, each
with its share among all tokens for comparison. Also the training log: lam and the batch's k-th
largest loss over updates, and the loss curves, from fairseq's simple-format log lines.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

FREQUENT_TOP = 50  # "frequent words": the 50 most frequent subwords of the target dictionary
# Weight thresholds reported: below 0.5 is below lam (SReLU); 0.1 and 0.01 are nearly untrained tokens.
WEIGHT_THRESHOLDS = (0.5, 0.1, 0.01)

_INNER = re.compile(r"\| train_inner \| (.*)$")
_EPOCH = re.compile(r"\| (train|valid) \| (.*)$")
_KEY_EQ = re.compile(r"(\w+)=([-+0-9.eE]+|inf|nan)(?:,|$)")
_KEY_BAR = re.compile(r"(?:^|\| )(\w+) ([-+0-9.eE]+|inf|nan)(?= \||$)")


def parse_train_log(text: str) -> dict[str, list[dict[str, float]]]:
    """fairseq's --log-format simple lines: {'train_inner': [...], 'train': [...], 'valid': [...]}."""
    records = {"train_inner": [], "train": [], "valid": []}
    for line in text.splitlines():
        inner = _INNER.search(line)
        if inner:
            records["train_inner"].append({k: float(v) for k, v in _KEY_EQ.findall(inner.group(1))})
            continue
        epoch = _EPOCH.search(line)
        if epoch:
            values = {k: float(v) for k, v in _KEY_BAR.findall(epoch.group(2))}
            if values:
                records[epoch.group(1)].append(values)
    return records


def is_punctuation(symbol: str) -> bool:
    text = symbol.replace("\u2581", "")
    return bool(text) and all(unicodedata.category(c).startswith("P") for c in text)


def weight_summary(losses, lam: float, delta: float, always_one=None,
                   thresholds: tuple[float, ...] = WEIGHT_THRESHOLDS, smoother: str = "srelu") -> dict:
    """The aggregate's gradient weight of each token relative to the plain average's: the smoother's
    derivative at l - lam (SReLU'(l - lam) for ST_k, the hinge's step for MAT_k), 1 for the tokens in
    `always_one` (e.g. EOS under --stk-always-average eos): sums for the mean weight and counts below
    each threshold.

    losses: 1-D tensor of valid token losses (nats); always_one: bool tensor like losses, or None.
    Returns {"tokens", "weight_sum", "below": {threshold: count}} (sums, so batches add up)."""
    import torch

    from stk_nmt.core import get_smoother, srelu_grad

    x = losses.double() - lam
    if smoother == "srelu":
        weights = srelu_grad(x, delta)  # closed form
    else:  # the other smoothers through autograd (relu's derivative at 0 is torch's, 0)
        x = x.detach().requires_grad_(True)
        weights, = torch.autograd.grad(get_smoother(smoother, delta)(x).sum(), x)
    if always_one is not None:
        weights = weights.masked_fill(always_one, 1.0)
    return {"tokens": int(weights.numel()), "weight_sum": float(weights.sum()),
            "below": {str(t): int((weights < t).sum()) for t in thresholds}}


def _add_weight_counts(total: dict | None, part: dict) -> dict:
    if total is None:
        return part
    return {"tokens": total["tokens"] + part["tokens"], "weight_sum": total["weight_sum"] + part["weight_sum"],
            "below": {t: total["below"][t] + part["below"][t] for t in total["below"]}}


def tokens_below_lam(checkpoint: Path, data_bin: Path, subset: str = "valid", max_sentences: int = 500,
                     max_tokens: int = 4096) -> dict | None:
    """Token-loss analysis of one checkpoint; None when its criterion has no lam (the baseline)."""
    import numpy as np
    import torch
    from fairseq import checkpoint_utils
    from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

    from ...core import get_aggregate
    from ...fairseq_compat import allow_fairseq_checkpoints

    # Explicitly: the allow-list is installed on import only when fairseq was imported first.
    allow_fairseq_checkpoints()
    state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint))
    criterion_state = state.get("criterion") or {}
    if "aggregate.lam" not in criterion_state:
        return None
    lam = float(criterion_state["aggregate.lam"].reshape(-1)[0])
    cfg = state["cfg"]
    eps = float(getattr(cfg.criterion, "label_smoothing", 0.0) or 0.0)
    delta = float(getattr(cfg.criterion, "stk_delta", 0.0) or 0.0)
    always_eos = str(getattr(cfg.criterion, "stk_always_average", "none")) == "eos"
    # The smoother the criterion's aggregate used (MAT_k's is the hinge, whatever --stk-smoother says).
    smoother = getattr(get_aggregate(str(cfg.criterion.stk_aggregate)).build(
        k_ratio=0.5, delta=delta or 0.01, smoother=str(getattr(cfg.criterion, "stk_smoother", "srelu"))),
        "smoother", "srelu")
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(checkpoint)], arg_overrides={"data": str(data_bin)}, state=state)
    model = models[0].float().eval()
    task.load_dataset(subset)
    dataset = task.dataset(subset)
    indices = list(range(min(max_sentences, len(dataset))))
    batches = dataset.batch_by_size(np.array(indices, dtype=np.int64), max_tokens=max_tokens)
    dictionary = task.target_dictionary
    pad, eos = dictionary.pad(), dictionary.eos()
    # fairseq's dictionary lists symbols by decreasing training count after the special ones.
    frequent = torch.arange(dictionary.nspecial, min(len(dictionary), dictionary.nspecial + FREQUENT_TOP))
    punctuation = torch.tensor([i for i in range(len(dictionary)) if is_punctuation(dictionary[i])], dtype=torch.long)
    counts = {"all": 0, "below": 0, "below_zero_grad": 0,
              "all_eos": 0, "all_punct": 0, "all_frequent": 0,
              "below_eos": 0, "below_punct": 0, "below_frequent": 0}
    weights = None  # weight_summary sums over all tokens
    with torch.no_grad():
        for batch in batches:
            sample = dataset.collater([dataset[int(i)] for i in batch])
            net_output = model(**sample["net_input"])
            lprobs = model.get_normalized_probs(net_output, log_probs=True)
            target = sample["target"].reshape(-1)
            loss, _ = label_smoothed_nll_loss(lprobs.reshape(-1, lprobs.size(-1)), target, eps,
                                              ignore_index=pad, reduce=False)
            loss = loss.reshape(-1)
            keep = target.ne(pad)
            loss, target = loss[keep], target[keep]
            below = loss < lam
            for name, mask in (("all", torch.ones_like(below)), ("below", below)):
                counts[name] += int(mask.sum())
                counts[f"{name}_eos"] += int((mask & target.eq(eos)).sum())
                counts[f"{name}_punct"] += int((mask & torch.isin(target, punctuation)).sum())
                counts[f"{name}_frequent"] += int((mask & torch.isin(target, frequent)).sum())
            counts["below_zero_grad"] += int((loss < lam - delta).sum())
            weights = _add_weight_counts(weights, weight_summary(loss, lam, delta,
                                                                 target.eq(eos) if always_eos else None,
                                                                 smoother=smoother))
    share = lambda part, whole: part / whole if whole else 0.0  # noqa: E731
    weights = weights or {"tokens": 0, "weight_sum": 0.0, "below": {str(t): 0 for t in WEIGHT_THRESHOLDS}}
    return {
        "lam": lam, "delta": delta, "smoother": smoother, "label_smoothing": eps, "subset": subset, "sentences": len(indices),
        "always_average_eos": always_eos,
        "tokens": counts["all"], "below_lam_fraction": share(counts["below"], counts["all"]),
        # Below lam - delta: the weight there is 0.146 or less (never 0); kept for older records.
        "below_lam_minus_delta_fraction": share(counts["below_zero_grad"], counts["all"]),
        "mean_weight": share(weights["weight_sum"], weights["tokens"]),
        "weight_below_fraction": {t: share(c, weights["tokens"]) for t, c in weights["below"].items()},
        "share_of_below": {k: share(counts[f"below_{k}"], counts["below"]) for k in ("eos", "punct", "frequent")},
        "share_of_all": {k: share(counts[f"all_{k}"], counts["all"]) for k in ("eos", "punct", "frequent")},
        "frequent_top": FREQUENT_TOP, "counts": counts,
    }
