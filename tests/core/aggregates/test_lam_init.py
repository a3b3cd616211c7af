"""lam's first value: a lam set by hand before the first training batch is kept; an unset lam becomes
that batch's k-th largest loss. One rule for the core's modules and the experiments' batched grids
(the fairseq criteria: tests/criterions/test_criterion_stk.py)."""

import pytest
import torch

from stk_nmt.core import MATk, STk, get_aggregate, st_k
from stk_nmt.core.aggregates.lam_init import LAM_UNSET, first_lam
from stk_nmt.experiments.batched import BatchedAggregate

BATCH = torch.tensor([1.0, 4.0, 3.0, 2.0])  # 2nd largest: 3.0


@pytest.mark.parametrize("cls", [STk, MATk])
def test_lam_set_by_hand_before_the_first_batch_is_kept(cls):
    module = cls(k=2)
    with torch.no_grad():
        module.lam.fill_(2.5)
    module.train()
    value = module(BATCH)
    assert module.lam.item() == 2.5 and bool(module.lam_initialized)
    smoother = "srelu" if cls is STk else "relu"
    reference = st_k(BATCH, torch.tensor(2.5), 2, delta=0.01) if cls is STk else (
        torch.relu(BATCH - 2.5).mean() + 2 / 4 * 2.5)
    assert module.smoother == smoother
    assert value.item() == pytest.approx(reference.item(), rel=1e-6)


def test_lam_set_by_hand_serves_an_evaluation_before_training_and_survives_a_resume():
    module = STk(k=2)
    module.lam.data.copy_(torch.tensor(3.5))  # through .data, as optimizers and checkpoints write it
    module.eval()
    value = module(BATCH)
    assert value.item() == pytest.approx(st_k(BATCH, torch.tensor(3.5), 2, delta=0.01).item(), rel=1e-6)
    fresh = STk(k=2)
    fresh.load_state_dict(module.state_dict())
    fresh.train()
    fresh(torch.tensor([10.0, 20.0, 30.0]))
    assert fresh.lam.item() == 3.5 and bool(fresh.lam_initialized)


def test_unset_lam_still_starts_at_the_first_batchs_kth_largest_loss():
    module = STk(k=2)
    assert module.lam.item() == LAM_UNSET
    module(BATCH)
    assert module.lam.item() == 3.0 and bool(module.lam_initialized)


def test_set_lam_marks_even_the_unset_value_as_chosen():
    module = STk(k=2)
    module.set_lam(LAM_UNSET)  # the one value a plain fill_ cannot tell from "unset"
    module(BATCH)
    assert module.lam.item() == LAM_UNSET and bool(module.lam_initialized)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        module.set_lam(float("nan"))


def test_first_lam_keeps_hand_set_rows_and_flags_non_finite_ones():
    lam = torch.tensor([LAM_UNSET, 7.0, LAM_UNSET])
    kth = torch.tensor([2.0, 3.0, float("nan")])
    value, ready = first_lam(lam, kth)
    assert value[:2].tolist() == [2.0, 7.0] and torch.isnan(value[2])
    assert ready.tolist() == [True, True, False]


def test_batched_grid_keeps_a_row_set_by_hand():
    grid = BatchedAggregate("stk", 2, k_specs=[2, 2], deltas=[0.01, 0.01])
    with torch.no_grad():
        grid.lam[1] = 0.5
    losses = torch.stack([BATCH, BATCH + 1])
    grid(losses)
    assert grid.lam.tolist() == [3.0, 0.5]


def _meta_step(module, n=64):
    """A training forward and backward on the meta device, which holds no values: any read-back of a
    tensor to the host (what would make a GPU training step wait for the device) raises there."""
    module.to("meta").train()
    losses = torch.empty(n, device="meta", requires_grad=True)
    value = module(losses)
    value.backward()
    assert value.shape == () and losses.grad.shape == (n,)


@pytest.mark.parametrize("cls", [STk, MATk])
def test_a_training_step_reads_nothing_back_once_lam_is_set(cls):
    first = cls(k_ratio=0.5)
    first.train()
    first(BATCH)  # the first training batch sets lam: one read-back, once per run
    _meta_step(first)
    _meta_step(cls(k=3, lam_init=1.0))  # lam given at construction
    by_hand = cls(k=3)
    by_hand.set_lam(2.0)
    _meta_step(by_hand)
    resumed = cls(k_ratio=0.5)
    resumed.load_state_dict(STk(k_ratio=0.5, lam_init=0.5).state_dict())  # a checkpoint with lam set
    _meta_step(resumed)


def test_the_meta_step_can_fail_while_lam_is_unset():
    """The check above has teeth: an unset lam is read back (to keep a lam written by hand)."""
    with pytest.raises(Exception):
        _meta_step(STk(k_ratio=0.5))


@pytest.mark.parametrize("name", ["average", "maximum", "atk", "matk", "stk"])
def test_every_aggregate_module_reads_nothing_back_off_the_cpu(name):
    """The non-finite checks read back on the CPU only (core/sync_policy.py); there they still raise."""
    module = get_aggregate(name).build(k_ratio=0.5, lam_init=1.0)
    _meta_step(module)
    module = get_aggregate(name).build(k_ratio=0.5, lam_init=1.0)
    with pytest.raises(ValueError, match="non-finite"):
        module(torch.tensor([1.0, float("nan"), 2.0]))
