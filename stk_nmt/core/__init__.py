"""Pure-PyTorch core: smoothers, aggregates (average, maximum, AT_k, MAT_k, ST_k), top-K hinge losses.

Imports torch only (never fairseq or torchvision), so it serves any training loop.
"""

import sys

from .aggregates import (
    average,
    average_top_k,
    kth_largest,
    lambda_form,
    masked_kth_largest,
    masked_sorted,
    masked_total,
    mat_k,
    maximum,
    resolve_k_tensor,
    st_k,
)
from .fused_stk import fused_st_k
from .modules import (
    AGGREGATES,
    Aggregate,
    Average,
    AverageTopK,
    MATk,
    Maximum,
    STk,
    build_aggregate,
    lam_param_groups,
    lam_parameters,
)
from .smoothers import SMOOTHERS, compute_dtype, get_smoother, srelu, srelu_grad
from .losses import (
    BalancedTopKHinge,
    ImbalancedTopKHinge,
    PerturbedTopK,
    balanced_topk_hinge,
    class_margins,
    imbalanced_topk_hinge,
    noised_topk_hinge,
    perturbed_topk,
)
from .validation import resolve_k, select_valid

__all__ = [
    "AGGREGATES", "SMOOTHERS", "Aggregate", "Average", "AverageTopK", "MATk", "Maximum", "STk",
    "average", "average_top_k", "build_aggregate", "compute_dtype", "fused_st_k", "get_smoother", "kth_largest",
    "lam_param_groups", "lam_parameters", "lambda_form", "mat_k", "maximum", "resolve_k",
    "select_valid", "srelu", "srelu_grad", "st_k",
    # sync-free masked forms (n and k as tensors) for training loops such as the fairseq criteria
    "masked_kth_largest", "masked_sorted", "masked_total", "resolve_k_tensor",
    # top-K hinge losses (Garcin et al. 2022)
    "BalancedTopKHinge", "ImbalancedTopKHinge", "PerturbedTopK", "balanced_topk_hinge", "class_margins",
    "imbalanced_topk_hinge", "noised_topk_hinge", "perturbed_topk",
]

# Deprecated module paths (before core/losses/): stk_nmt.core.perturbed_topk and .topk_hinge are
# the modules under core.losses. Registered as aliases of the same module objects rather than as
# files at the old paths, so that patching the old path patches the code that runs.
sys.modules[__name__ + ".perturbed_topk"] = sys.modules[__name__ + ".losses.perturbed_topk"]
sys.modules[__name__ + ".topk_hinge"] = sys.modules[__name__ + ".losses.topk_hinge"]
topk_hinge = sys.modules[__name__ + ".losses.topk_hinge"]
