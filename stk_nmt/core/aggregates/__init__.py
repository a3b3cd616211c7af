"""Aggregates: how the individual losses of a batch become one number.

average, maximum, AT_k (average of the top k), MAT_k and ST_k (lambda forms with a trainable
threshold lam), each as a function (functional.py, masked.py for sync-free training loops,
batched.py for G aggregates over the rows of a (G, B) matrix) and as a module (modules.py,
lambda_forms.py, built by name in factory.py). Also: the fused ST_k kernel, the smoothers that
replace the hinge, the k rules and argument checks, lam's optimizer groups and its gradient.

`stk_nmt.core.aggregates` was one module of functional forms; its names are all here still.
"""

from ..precision import compute_dtype, upcast  # importable from the old stk_nmt.core.aggregates module
from .batched import (
    batched_average,
    batched_average_top_k,
    batched_kth_largest,
    batched_lambda_form,
    batched_mat_k,
    batched_maximum,
    batched_st_k,
    resolve_k_rows,
)
from .factory import AGGREGATE_ARGUMENTS, AGGREGATE_LABELS, AGGREGATES, build_aggregate, ignored_arguments
from .functional import average, average_top_k, kth_largest, lambda_form, mat_k, maximum, st_k
from .fused_stk import fused_st_k
from .lam_init import LAM_UNSET, first_lam, lam_is_set
from .lam_params import lam_group, lam_param_groups, lam_parameters
from .lam_update import lam_gradient_sum, lam_sgd_step
from .lambda_forms import LambdaForm, MATk, STk
from .masked import masked_kth_largest, masked_sorted, masked_total, masked_total_partly_averaged, resolve_k_tensor
from .modules import Aggregate, Average, AverageTopK, Maximum
from .settings import DEFAULT_K_RATIO, check_settings, resolve_k_settings
from .smoothers import SMOOTHERS, get_smoother, srelu, srelu_grad
from .validation import check_delta, check_k_args, raise_if_nonfinite, resolve_k, select_valid

__all__ = [
    "AGGREGATE_LABELS", "AGGREGATES", "SMOOTHERS", "Aggregate", "compute_dtype", "upcast", "Average", "AverageTopK", "LambdaForm", "MATk", "Maximum", "STk",
    "average", "average_top_k", "build_aggregate", "check_delta", "check_k_args", "fused_st_k", "get_smoother",
    "kth_largest", "lam_gradient_sum", "lam_sgd_step", "lam_group", "lam_param_groups", "lam_parameters", "lambda_form",
    "mat_k", "masked_kth_largest", "masked_sorted", "masked_total", "masked_total_partly_averaged", "maximum", "raise_if_nonfinite",
    "resolve_k", "resolve_k_tensor", "select_valid", "srelu", "srelu_grad", "st_k",
    # the stk_* settings of the training-loop adapters
    "DEFAULT_K_RATIO", "check_settings", "resolve_k_settings",
    # lam's first value (one rule for every training loop) and the arguments each aggregate uses
    "LAM_UNSET", "first_lam", "lam_is_set", "AGGREGATE_ARGUMENTS", "ignored_arguments",
    # one aggregate per row of a (G, B) loss matrix
    "batched_average", "batched_average_top_k", "batched_kth_largest", "batched_lambda_form", "batched_mat_k",
    "batched_maximum", "batched_st_k", "resolve_k_rows",
]
