"""The core's batched forms (one k, lam, delta per row of a (G, B) matrix) against the functional
forms applied to each row alone, values and gradients."""

import math

import pytest
import torch

from stk_nmt.core import average, average_top_k, kth_largest, mat_k, maximum, st_k
from stk_nmt.core.aggregates.batched import (
    batched_average,
    batched_average_top_k,
    batched_kth_largest,
    batched_lambda_form,
    batched_mat_k,
    batched_maximum,
    batched_st_k,
    resolve_k_rows,
)
from stk_nmt.core.aggregates import lambda_form

K_SPECS = [1, 0.1, 0.5, 0.9, 1.0, 3, 20]
DELTAS = [0.1, 0.01, 0.001, 0.0001, 0.01, 0.1, 1.0]
G, B = len(K_SPECS), 20


def rows(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(G, B, generator=g, dtype=dtype) * 3).requires_grad_(True)


def test_resolve_k_rows_applies_the_k_rule_per_row():
    expected = [1, 2, 10, 18, 20, 3, 20]  # counts as given, ratios ceil(ratio * 20)
    assert resolve_k_rows(B, K_SPECS).tolist() == expected
    assert expected == [s if isinstance(s, int) else math.ceil(round(s * B, 9)) for s in K_SPECS]
    with pytest.raises(ValueError, match="k must be <="):
        resolve_k_rows(B, [21])


@pytest.mark.parametrize("name", ["average", "maximum", "atk", "kth", "matk", "stk", "softplus"])
@pytest.mark.parametrize("per_row_delta", [True, False])
def test_every_row_equals_the_functional_form_on_that_row(name, per_row_delta):
    losses = rows()
    k = resolve_k_rows(B, K_SPECS)
    lam = torch.linspace(0.5, 2.5, G, dtype=torch.float64).requires_grad_(True)
    deltas = torch.tensor(DELTAS, dtype=torch.float64) if per_row_delta else 0.01
    batched = {
        "average": lambda: batched_average(losses), "maximum": lambda: batched_maximum(losses),
        "atk": lambda: batched_average_top_k(losses, k), "kth": lambda: batched_kth_largest(losses, k),
        "matk": lambda: batched_mat_k(losses, lam, k), "stk": lambda: batched_st_k(losses, lam, k, delta=deltas),
        "softplus": lambda: batched_lambda_form(losses, lam, k, "softplus"),
    }[name]()
    assert batched.shape == (G,)
    if name != "kth":
        batched.sum().backward()
    for g in range(G):
        row = losses.detach()[g].clone().requires_grad_(True)
        lam_g = lam.detach()[g].clone().requires_grad_(True)
        kg = int(k[g])
        delta_g = DELTAS[g] if per_row_delta else 0.01
        ref = {
            "average": lambda: average(row), "maximum": lambda: maximum(row),
            "atk": lambda: average_top_k(row, kg), "kth": lambda: kth_largest(row, kg),
            "matk": lambda: mat_k(row, lam_g, kg), "stk": lambda: st_k(row, lam_g, kg, delta=delta_g, fused=False),
            "softplus": lambda: lambda_form(row, lam_g, kg, smoother="softplus"),
        }[name]()
        assert batched[g].item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-14)
        if name == "kth":
            assert batched[g].item() == sorted(row.tolist(), reverse=True)[kg - 1]  # brute force
            continue
        ref.backward()
        torch.testing.assert_close(losses.grad[g], row.grad, rtol=1e-10, atol=1e-14)
        if name in ("matk", "stk", "softplus"):
            assert lam.grad[g].item() == pytest.approx(lam_g.grad.item(), rel=1e-10, abs=1e-14)


def test_half_rows_compute_in_fp32():
    losses = rows(1, torch.float16).detach()
    k = resolve_k_rows(B, K_SPECS)
    out = batched_st_k(losses, torch.ones(G), k, delta=torch.tensor(DELTAS))
    assert out.dtype == torch.float32
    ref = batched_st_k(losses.float(), torch.ones(G), k, delta=torch.tensor(DELTAS))
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda L, k, lam: batched_average(L[0]), r"\(G, B\) tensor"),
        (lambda L, k, lam: batched_average_top_k(L, k[:3]), r"k must be a tensor of shape \(G,\)"),
        (lambda L, k, lam: batched_average_top_k(L, torch.zeros_like(k)), r"k must hold integers in \[1, B=20\]"),
        (lambda L, k, lam: batched_average_top_k(L, k + 20), r"got k=\[21,"),
        (lambda L, k, lam: batched_mat_k(L, lam[:2], k), "lam must be a tensor of shape"),
        (lambda L, k, lam: batched_st_k(L, lam, k, delta=torch.zeros(G)), "delta must hold finite numbers > 0"),
        (lambda L, k, lam: batched_st_k(L, lam, k, delta=torch.ones(2)), "delta must be a tensor of shape"),
        (lambda L, k, lam: batched_st_k(L, lam, k, delta=-1.0), "delta must be a finite number > 0, got delta=-1.0"),
    ],
)
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call(rows().detach(), resolve_k_rows(B, K_SPECS), torch.ones(G))
