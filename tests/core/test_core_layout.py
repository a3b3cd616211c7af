"""The core's two axes as packages, and the old module paths that must keep working."""

import importlib
import math

import pytest
import torch

import stk_nmt.core as core


@pytest.mark.parametrize(
    "old,new,names",
    [
        # stk_nmt.core.aggregates was the module of functional forms; it is the package now.
        ("stk_nmt.core.aggregates", "stk_nmt.core.aggregates",
         ["average", "average_top_k", "kth_largest", "lambda_form", "st_k", "mat_k", "masked_total",
          "resolve_k_tensor", "masked_sorted", "masked_kth_largest"]),
        ("stk_nmt.core.modules", "stk_nmt.core.aggregates",
         ["AGGREGATES", "Aggregate", "Average", "Maximum", "AverageTopK", "STk", "MATk", "build_aggregate",
          "lam_parameters", "lam_param_groups"]),
        ("stk_nmt.core.smoothers", "stk_nmt.core.aggregates.smoothers",
         ["SMOOTHERS", "srelu", "srelu_grad", "get_smoother", "upcast", "compute_dtype"]),
        ("stk_nmt.core.fused_stk", "stk_nmt.core.aggregates.fused_stk", ["fused_st_k", "CHUNK"]),
        ("stk_nmt.core.validation", "stk_nmt.core.aggregates.validation",
         ["resolve_k", "select_valid", "check_delta", "check_k_args"]),
        ("stk_nmt.core.perturbed_topk", "stk_nmt.core.losses.topk.perturbed",
         ["perturbed_topk", "PerturbedTopK", "truncation_margin"]),
        ("stk_nmt.core.topk_hinge", "stk_nmt.core.losses.topk.hinge",
         ["noised_topk_hinge", "BalancedTopKHinge", "ImbalancedTopKHinge", "class_margins"]),
        ("stk_nmt.vision.losses", "stk_nmt.core.losses",
         ["LOSSES", "COSINE_LOSSES", "CrossEntropy", "LogitAdjusted", "LDAM", "build_loss", "cross_entropy",
          "logit_adjusted_cross_entropy", "ldam_loss", "ldam_margins"]),
    ],
)
def test_old_module_paths_still_import_the_same_objects(old, new, names):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name), (old, name)


def test_old_paths_are_the_moved_modules_and_the_public_names_are_unchanged():
    # The same module object: patching the old path patches the code that runs.
    assert importlib.import_module("stk_nmt.core.fused_stk") is importlib.import_module("stk_nmt.core.aggregates.fused_stk")
    assert core.smoothers is importlib.import_module("stk_nmt.core.aggregates.smoothers")
    assert core.perturbed_topk is core.losses.perturbed_topk  # the function, as before the move
    for name in ("STk", "MATk", "srelu", "average_top_k", "noised_topk_hinge", "st_k", "build_aggregate",
                 "lam_param_groups", "compute_dtype", "fused_st_k"):
        assert name in core.__all__ and hasattr(core, name)


def test_the_core_exports_every_public_loss_and_aggregate_name():
    # README: a loss or an aggregate is exported from stk_nmt.core.
    missing = [name for package in (core.losses, core.aggregates) for name in package.__all__
               if getattr(core, name, None) is not getattr(package, name) or name not in core.__all__]
    assert not missing, missing


def test_matk_and_stk_share_the_lambda_form_base_not_each_other():
    stk, matk = core.STk(k=2), core.MATk(k=2)
    assert isinstance(stk, core.LambdaForm) and isinstance(matk, core.LambdaForm)
    assert not isinstance(matk, core.STk)
    assert not isinstance(core.AverageTopK(k=2), core.LambdaForm)
    model = torch.nn.ModuleDict({"a": stk, "b": matk, "c": core.Average()})
    assert core.lam_parameters(model) == [stk.lam, matk.lam]


def test_pointwise_losses_against_their_formulas():
    from stk_nmt.core.losses import POINTWISE_LOSSES

    f = torch.tensor([-2.0, -0.5, 0.0, 0.7, 3.0], dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    expected = {
        "logistic": [math.log1p(math.exp(-a * b)) for a, b in zip(y.tolist(), f.tolist())],
        "hinge": [max(0.0, 1 - a * b) for a, b in zip(y.tolist(), f.tolist())],
        "square": [(b - a) ** 2 for a, b in zip(y.tolist(), f.tolist())],
        "absolute": [abs(b - a) for a, b in zip(y.tolist(), f.tolist())],
    }
    assert set(POINTWISE_LOSSES) == set(expected)
    for name, values in expected.items():
        torch.testing.assert_close(POINTWISE_LOSSES[name](f, y), torch.tensor(values, dtype=torch.float64))
    # logistic stays finite where exp(-y f) overflows
    assert torch.isfinite(POINTWISE_LOSSES["logistic"](torch.tensor([-1000.0]), torch.tensor([1.0]))).all()
