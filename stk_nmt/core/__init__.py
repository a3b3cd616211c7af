"""Pure-PyTorch core, on two independent axes: individual losses and aggregates.

- losses/: one loss per item: the perturbed top-K operator, the top-K hinge losses, the
  classification losses of any (B, C) logits, the per-example losses of a score and a target.
- aggregates/: how a batch of item losses becomes one number: average, maximum, AT_k, MAT_k,
  ST_k, one class per aggregate in aggregates/kinds/, looked up by name in aggregates/registry.py
  (functions, modules, the fused kernel, smoothers, k rules, lam's groups and gradient).
- precision.py and distributed.py: the fp32 rules and the sums over processes both axes use.

Any individual loss combines with any aggregate: build_aggregate("stk", k_ratio=0.9)(losses).
Imports torch only (never fairseq or torchvision), so it serves any training loop.
"""

import sys

from .aggregates import (
    AGGREGATE_ARGUMENTS,
    AGGREGATE_LABELS,
    AGGREGATES,
    SMOOTHERS,
    Aggregate,
    Average,
    AverageTopK,
    LAM_UNSET,
    LambdaForm,
    MATk,
    Maximum,
    STk,
    average,
    average_top_k,
    batched_average,
    batched_average_top_k,
    batched_kth_largest,
    batched_lambda_form,
    batched_mat_k,
    batched_maximum,
    batched_st_k,
    build_aggregate,
    check_delta,
    check_k_args,
    first_lam,
    fused_st_k,
    get_smoother,
    ignored_arguments,
    kth_largest,
    lam_gradient_sum,
    lam_group,
    lam_is_set,
    lam_param_groups,
    lam_parameters,
    lambda_form,
    masked_kth_largest,
    masked_sorted,
    masked_total,
    masked_total_partly_averaged,
    mat_k,
    maximum,
    raise_if_nonfinite,
    resolve_k,
    resolve_k_rows,
    resolve_k_tensor,
    select_valid,
    srelu,
    srelu_grad,
    st_k,
    upcast,
)
from .aggregates import DEFAULT_K_RATIO, check_settings, lam_sgd_step, resolve_k_settings
from .aggregates import (
    AggregateKind,
    LambdaKind,
    MaskedBatch,
    aggregate_labels,
    aggregate_names,
    get_aggregate,
    load_entry_points,
    rank_masked,
    register_aggregate,
    unregister_aggregate,
)
from .losses import (
    COSINE_LOSSES,
    LDAM,
    LOSSES,
    POINTWISE_LOSSES,
    BalancedTopKHinge,
    CrossEntropy,
    ImbalancedTopKHinge,
    LogitAdjusted,
    PerturbedTopK,
    absolute_loss,
    balanced_topk_hinge,
    build_loss,
    check_logits_labels,
    class_count_tensor,
    class_margins,
    cross_entropy,
    hinge_loss,
    imbalanced_topk_hinge,
    ldam_loss,
    ldam_margins,
    logistic_loss,
    logit_adjusted_cross_entropy,
    noised_topk_hinge,
    perturbed_topk,
    square_loss,
)
from .precision import compute_dtype

__all__ = [
    "AGGREGATE_LABELS", "AGGREGATES", "SMOOTHERS", "Aggregate", "Average", "AverageTopK", "LambdaForm", "MATk", "Maximum", "STk",
    "average", "average_top_k", "build_aggregate", "compute_dtype", "fused_st_k", "get_smoother", "kth_largest",
    "lam_param_groups", "lam_parameters", "lambda_form", "mat_k", "maximum", "resolve_k",
    "select_valid", "srelu", "srelu_grad", "st_k", "upcast", "check_delta", "check_k_args", "raise_if_nonfinite",
    "lam_gradient_sum", "lam_group", "LAM_UNSET", "first_lam", "lam_is_set", "AGGREGATE_ARGUMENTS", "ignored_arguments",
    # lam's SGD step and the stk_* settings of the training-loop adapters (fairseq, Hugging Face)
    "lam_sgd_step", "DEFAULT_K_RATIO", "check_settings", "resolve_k_settings",
    # one aggregate per row of a (G, B) loss matrix
    "batched_average", "batched_average_top_k", "batched_kth_largest", "batched_lambda_form", "batched_mat_k",
    "batched_maximum", "batched_st_k", "resolve_k_rows",
    # sync-free masked forms (n and k as tensors) for training loops such as the fairseq criteria
    "masked_kth_largest", "masked_sorted", "masked_total", "masked_total_partly_averaged", "resolve_k_tensor",
    "MaskedBatch", "rank_masked",
    # the registry of aggregates: one class per aggregate, one file each (aggregates/kinds/)
    "AggregateKind", "LambdaKind", "aggregate_labels", "aggregate_names", "get_aggregate", "register_aggregate",
    "unregister_aggregate", "load_entry_points",
    # top-K hinge losses (Garcin et al. 2022)
    "BalancedTopKHinge", "ImbalancedTopKHinge", "PerturbedTopK", "balanced_topk_hinge", "class_margins",
    "imbalanced_topk_hinge", "noised_topk_hinge", "perturbed_topk",
    # classification losses of any (B, C) logits, built by name with build_loss
    "COSINE_LOSSES", "LDAM", "LOSSES", "CrossEntropy", "LogitAdjusted", "build_loss", "check_logits_labels",
    "class_count_tensor", "cross_entropy", "ldam_loss", "ldam_margins", "logit_adjusted_cross_entropy",
    # per-example losses of a real score against a target
    "POINTWISE_LOSSES", "absolute_loss", "hinge_loss", "logistic_loss", "square_loss",
]

# Deprecated module paths from before losses/ and aggregates/ (stk_nmt.core.aggregates, the old
# module of functional forms, is the aggregates package itself). Each old path is an alias of the
# module that now holds its code (the same object, so patching the old path patches what runs),
# registered here rather than as files at the old paths: git then follows the moved files.
_MOVED = {
    "perturbed_topk": "losses.topk.perturbed",
    "topk_hinge": "losses.topk.hinge",
    "modules": "aggregates",
    "smoothers": "aggregates.smoothers",
    "fused_stk": "aggregates.fused_stk",
    "validation": "aggregates.validation",
}
for _old, _new in _MOVED.items():
    sys.modules[f"{__name__}.{_old}"] = sys.modules[f"{__name__}.{_new}"]
    if _old not in globals():  # perturbed_topk stays the function, as it always was
        globals()[_old] = sys.modules[f"{__name__}.{_new}"]
del _old, _new
