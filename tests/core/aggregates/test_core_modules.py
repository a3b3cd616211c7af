"""The STk module: lam in fp32, data-dependent initialisation, optimisation, parameter groups."""

import subprocess
import sys

import pytest
import torch

from stk_nmt.core import STk, AverageTopK, build_aggregate, lam_param_groups, st_k


def test_importing_the_core_does_not_import_fairseq():
    code = "import sys, stk_nmt, stk_nmt.core; print('fairseq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forward_equals_functional_st_k_with_its_lam():
    module = STk(k_ratio=0.5, delta=0.05, lam_init=0.3)
    losses = torch.rand(31, dtype=torch.float64)
    expect = st_k(losses, torch.tensor(0.3, dtype=torch.float64), 16, delta=0.05)
    assert module(losses).item() == pytest.approx(expect.item(), rel=1e-6)
    assert (module.last_n, module.last_k) == (31, 16)


def test_default_lam_starts_at_first_batch_kth_largest_loss():
    module = STk(k=3)
    losses = torch.tensor([0.1, 5.0, 2.0, 0.3, 4.0, 1.0])
    module(losses)
    assert module.lam.item() == 2.0  # third largest
    assert bool(module.lam_initialized)
    module(torch.tensor([9.0, 8.0, 7.0, 6.0]))
    assert module.lam.item() == 2.0  # initialised once only


def test_initialised_flag_survives_state_dict_round_trip():
    trained = STk(k=2)
    trained(torch.tensor([1.0, 2.0, 3.0]))
    fresh = STk(k=2)
    fresh.load_state_dict(trained.state_dict())
    fresh(torch.tensor([10.0, 20.0, 30.0]))
    assert fresh.lam.item() == 2.0


def test_lam_stays_fp32_under_half_and_bfloat16():
    module = STk(k=2, lam_init=0.123456789)
    for dtype in (torch.float16, torch.bfloat16):
        module.to(dtype)
        assert module.lam.dtype == torch.float32
        assert module.lam.item() == pytest.approx(0.123456789, rel=1e-7)  # no half round trip
    module.half()
    assert module.lam.dtype == torch.float32
    value = module(torch.rand(10, dtype=torch.float16))
    assert value.dtype == torch.float32


def test_sgd_on_lam_alone_reaches_the_kth_largest_loss():
    losses = torch.linspace(0.0, 9.9, 100, dtype=torch.float32)  # k-th largest at k=10 is 9.0
    module = STk(k=10, lam_init=0.0)
    optimizer = torch.optim.SGD([module.param_group(lr=5.0)], lr=0.0)
    for _ in range(400):
        optimizer.zero_grad()
        module(losses).backward()
        optimizer.step()
    # the optimum lies between the 11th largest (8.9) and the 10th (9.0), up to O(delta)
    assert 8.9 - 0.01 <= module.lam.item() <= 9.0 + 0.01


def test_lam_param_groups_separates_lam_without_weight_decay():
    model = torch.nn.Linear(3, 2)
    aggregate = STk(k_ratio=0.9)
    groups = lam_param_groups([model, aggregate], lr=0.1)
    assert [len(g["params"]) for g in groups] == [2, 1]
    assert groups[1]["params"][0] is aggregate.lam
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["lr"] == 0.1
    optimizer = torch.optim.SGD(groups, lr=0.01, weight_decay=5e-4)
    assert optimizer.param_groups[0]["lr"] == 0.01 and optimizer.param_groups[0]["weight_decay"] == 5e-4


def test_build_aggregate_covers_every_name():
    losses = torch.tensor([1.0, 4.0, 2.0, 8.0])
    assert build_aggregate("average")(losses).item() == 3.75
    assert build_aggregate("maximum")(losses).item() == 8.0
    assert build_aggregate("atk", k=2)(losses).item() == 6.0
    matk = build_aggregate("matk", k=2)
    # lam initialised at the 2nd largest (4): (1/4) * (8 - 4) + (2/4) * 4 = 3 = (k/n) * AT_k
    assert matk(losses).item() == pytest.approx(3.0)
    assert isinstance(build_aggregate("atk", k_ratio=0.5), AverageTopK)
    with pytest.raises(ValueError, match="aggregate.*'median'"):
        build_aggregate("median")


def test_eval_or_no_grad_forward_does_not_initialise_lam():
    module = STk(k=2, delta=0.01)
    batch = torch.tensor([1.0, 4.0, 3.0])
    module.eval()
    value = module(batch)
    assert not bool(module.lam_initialized) and module.lam.item() == 0.0
    # Evaluated with the batch's own 2nd largest loss (3.0) as lam, which is not stored.
    assert value.item() == pytest.approx(st_k(batch, torch.tensor(3.0), 2, delta=0.01).item(), rel=1e-6)
    module.train()
    with torch.no_grad():
        module(batch)
    assert not bool(module.lam_initialized)
    module(torch.tensor([5.0, 7.0, 6.0]))  # the first training forward
    assert bool(module.lam_initialized) and module.lam.item() == 6.0


def test_keep_fp32_keeps_named_parameter_grad_and_buffer_through_a_cast():
    from torch import nn

    from stk_nmt.core.precision import keep_fp32

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.tensor([0.1, 0.2]))
            self.theta = nn.Parameter(torch.tensor([0.123456789]))
            self.register_buffer("table", torch.tensor([1.0 / 3.0]))

        def _apply(self, fn, recurse=True):
            return keep_fp32(self, ("theta", "table", "absent"), super()._apply, fn, recurse)

    module = Holder()
    module.theta.grad = torch.tensor([0.987654321])
    theta = module.theta
    module.half()
    assert module.weight.dtype == torch.float16  # the others follow the cast
    assert module.theta is theta  # the same Parameter object (an optimizer keeps it)
    assert module.theta.dtype == module.theta.grad.dtype == module.table.dtype == torch.float32
    assert module.theta.item() == torch.tensor(0.123456789).item()  # the value before, not an fp16 round trip
    assert module.theta.grad.item() == torch.tensor(0.987654321).item()
    assert module.table.item() == torch.tensor(1.0 / 3.0).item()


def test_imbalanced_topk_hinge_margins_stay_fp32_under_half():
    from stk_nmt.core import ImbalancedTopKHinge, class_margins

    counts = torch.tensor([500.0, 60.0, 7.0, 3.0])
    module = ImbalancedTopKHinge(2, 0.1, 0.5, counts).half()
    assert module.margins.dtype == torch.float32
    assert torch.equal(module.margins, class_margins(counts, 0.5))
