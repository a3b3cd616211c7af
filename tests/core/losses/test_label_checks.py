"""One label check, one sync policy, for every classification loss of the core.

The policy (losses/checks.py): the labels' type and shape are always checked; their range is read
back on the CPU only. Off the CPU the read-back would stall the device every training step, and an
out-of-range label trips the device's own index check instead. The meta device, which holds no
values (every read-back raises on it), stands in for a GPU here.
"""

import pytest
import torch

from stk_nmt.core.losses import LOSSES, build_loss

COUNTS = [50, 20, 12, 9, 7, 5, 3, 2]  # 8 classes: room for the hinge's default K = 5
C = len(COUNTS)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [C, -1])
def test_every_loss_refuses_a_label_out_of_range_on_the_cpu_with_one_message(name, bad):
    loss = build_loss(name, COUNTS)
    labels = torch.tensor([0, bad, 1])
    with pytest.raises(ValueError, match=rf"^labels must lie in \[0, C\) = \[0, {C}\), got a label {bad}"):
        loss(torch.randn(3, C), labels)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_reads_no_label_back_off_the_cpu(name):
    loss = build_loss(name, COUNTS).to("meta")
    logits = torch.randn(6, C, device="meta", requires_grad=True)
    out = loss(logits, torch.zeros(6, dtype=torch.long, device="meta"))
    out.sum().backward()
    assert out.shape == (6,) and logits.grad.shape == (6, C)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_checks_the_labels_form_on_any_device(name):
    loss = build_loss(name, COUNTS).to("meta")
    logits = torch.randn(6, C, device="meta")
    with pytest.raises(ValueError, match=r"labels must have shape \(B,\) = \(6,\)"):
        loss(logits, torch.zeros(5, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match="labels must be an integer torch.Tensor"):
        loss(logits, torch.zeros(6, device="meta"))


@pytest.mark.parametrize("name", LOSSES)
def test_a_label_of_minus_100_is_an_error_where_ranges_are_not_read_back(name, monkeypatch):
    """Off the CPU the range check is the device's index check. torch's cross_entropy would skip
    the label -100 (its default ignore_index) with a zero loss instead: a padding label leaking into
    a classification batch on a GPU would train silently on fewer items. Here the CPU stands in for a
    device: the value check is switched off, and the index check must still catch -100."""
    import stk_nmt.core.losses.checks as checks

    monkeypatch.setattr(checks, "checks_values", lambda tensor: False)
    loss = build_loss(name, COUNTS)
    with pytest.raises((IndexError, RuntimeError)):
        loss(torch.randn(3, C), torch.tensor([0, -100, 1]))
