"""Aggregates: how the individual losses of a batch become one number.

average, maximum, AT_k (average of the top k), MAT_k and ST_k (lambda forms with a trainable
threshold lam). Each aggregate is one class in one file under kinds/ (kinds/average.py ...
kinds/stk.py), registered by name in registry.py; the class gives every form a door needs: the
plain module (build), the masked form of the sync-free training loops (masked_k, masked_total),
the batched form over the rows of a (G, B) matrix (batched) and lam's first value (initial_lam,
the one rule of lam_init.py). Every door looks the name up in the registry (get_aggregate), so a
new aggregate is one file: a subclass of kinds.AggregateKind decorated with @register_aggregate,
imported once (kinds/__init__.py for the package's own).

The classes build on the shared forms: functions (functional.py), modules (modules.py,
lambda_forms.py), masked helpers (masked.py: rank_masked, the adapters' one masked path) and
batched functions (batched.py). Also: the fused ST_k kernel, the smoothers that replace the hinge,
the k rules and argument checks, lam's optimizer groups and its gradient.

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
from .masked import (
    MaskedBatch,
    masked_kth_largest,
    masked_sorted,
    masked_total,
    masked_total_partly_averaged,
    rank_masked,
    resolve_k_tensor,
)
from .modules import Aggregate, Average, AverageTopK, Maximum
from .registry import (
    aggregate_labels,
    aggregate_names,
    get_aggregate,
    load_entry_points,
    register_aggregate,
    unregister_aggregate,
)
from .kinds import AggregateKind, LambdaKind  # noqa: E402  isort: skip  (registers the five aggregates)
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
    # the registry: one class per aggregate
    "AggregateKind", "LambdaKind", "aggregate_labels", "aggregate_names", "get_aggregate", "register_aggregate",
    "load_entry_points",
    "unregister_aggregate", "MaskedBatch", "rank_masked",
]
