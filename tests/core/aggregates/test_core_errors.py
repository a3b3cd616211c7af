"""Every bad input raises a ValueError that names the argument and the value."""

import pytest
import torch

from stk_nmt.core import STk, average, average_top_k, mat_k, st_k

LAM = torch.tensor(0.0)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: st_k(torch.rand(5), LAM, 2, delta=0.0), r"delta.*delta=0\.0"),
        (lambda: st_k(torch.rand(5), LAM, 2, delta=-1.0), r"delta=-1\.0"),
        (lambda: st_k(torch.rand(5), LAM, 0), r"k must be an integer >= 1, got k=0"),
        (lambda: average_top_k(torch.rand(5), -3), r"k=-3"),
        (lambda: st_k(torch.rand(5), LAM, 6), r"k must be <= the number of valid items n=5, got k=6"),
        (lambda: average_top_k(torch.rand(5), 6), r"n=5, got k=6"),
        (lambda: st_k(torch.rand(5), LAM, k_ratio=0.0), r"k_ratio must be in \(0, 1\], got k_ratio=0\.0"),
        (lambda: st_k(torch.rand(5), LAM, k_ratio=1.5), r"k_ratio=1\.5"),
        (lambda: st_k(torch.rand(5), LAM), r"exactly one of k .* or k_ratio"),
        (lambda: st_k(torch.rand(5), LAM, 2, k_ratio=0.5), r"exactly one"),
        (lambda: st_k(torch.rand(5), LAM, 2.5), r"k=2\.5"),
        (lambda: average(torch.empty(0)), r"losses is empty"),
        (lambda: st_k(torch.empty(0, 3), LAM, k_ratio=0.5), r"losses is empty \(shape \(0, 3\)\)"),
        (lambda: st_k(torch.rand(4), LAM, 1, mask=torch.zeros(4, dtype=torch.bool)), r"fully masked"),
        (lambda: mat_k(torch.rand(4), LAM, 1, mask=torch.ones(5, dtype=torch.bool)), r"mask shape \(5,\) does not match losses shape \(4,\)"),
        (lambda: average(torch.rand(4), torch.ones(4)), r"mask must be a bool tensor"),
        (lambda: st_k(torch.tensor([1.0, float("nan"), float("inf"), 2.0]), LAM, 1), r"2 non-finite value\(s\).*out of 4"),
        (lambda: average(torch.tensor([1.0, float("nan")])), r"1 non-finite"),
        (lambda: average_top_k(torch.tensor([float("inf"), 1.0]), 1), r"1 non-finite"),
        (lambda: st_k(torch.rand(3), torch.tensor(float("nan")), 1), r"lam must be finite"),
        (lambda: st_k(torch.rand(3), 0.5, 1), r"lam must be a one-element tensor"),
        (lambda: STk(k=2, smoother="tanh"), r"smoother.*smoother='tanh'"),
        (lambda: STk(k=2, delta=0), r"delta=0"),
        (lambda: STk(k=2, lam_init=float("nan")), r"lam_init=nan"),
        (lambda: STk(), r"exactly one of k"),
        (lambda: average(torch.arange(4)), r"floating-point tensor, got dtype=torch.int64"),
    ],
)
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_nonfinite_losses_with_mask_count_only_valid_items():
    losses = torch.tensor([1.0, float("nan"), 2.0, float("nan")])
    mask = torch.tensor([True, True, True, False])
    with pytest.raises(ValueError, match=r"1 non-finite value\(s\) \(NaN or inf\) out of 3"):
        st_k(losses, LAM, 1, mask=mask)
