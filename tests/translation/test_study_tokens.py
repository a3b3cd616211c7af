"""The study's token analysis reports ST_k's real gradient weight, never a 'zero gradient'.

Reference: SReLU's derivative 0.5 (1 + x / sqrt(x^2 + delta^2)) evaluated by hand (math module)."""

import math

import pytest

torch = pytest.importorskip("torch")

from stk_nmt.translation.study.tokens import weight_summary  # noqa: E402


def hand_weight(loss, lam, delta):
    x = loss - lam
    return 0.5 * (1 + x / math.sqrt(x * x + delta * delta))


def test_weights_are_the_srelu_derivative_and_never_zero():
    lam, delta = 2.0, 0.1
    losses = [2.0, 1.9, 2.1, 1.0, 0.0]  # at lam, at lam - delta, above, far below
    summary = weight_summary(torch.tensor(losses, dtype=torch.float64), lam, delta)
    weights = [hand_weight(v, lam, delta) for v in losses]
    assert weights[1] == pytest.approx(0.5 * (1 - 1 / math.sqrt(2)))  # 0.146 at lam - delta, not 0
    assert summary["tokens"] == 5
    assert summary["weight_sum"] == pytest.approx(sum(weights), rel=1e-12)
    assert summary["below"] == {t: sum(w < float(t) for w in weights) for t in ("0.5", "0.1", "0.01")}
    assert summary["below"] == {"0.5": 3, "0.1": 2, "0.01": 2} and min(weights) > 0


def test_always_averaged_tokens_weigh_one():
    lam, delta = 2.0, 0.1
    losses = torch.tensor([0.0, 3.0, 1.0], dtype=torch.float64)
    eos = torch.tensor([True, False, False])
    summary = weight_summary(losses, lam, delta, always_one=eos)
    expected = [1.0, hand_weight(3.0, lam, delta), hand_weight(1.0, lam, delta)]
    assert summary["weight_sum"] == pytest.approx(sum(expected), rel=1e-12)
    assert summary["below"]["0.5"] == 1 and summary["below"]["0.01"] == 1


def test_other_smoothers_give_their_own_derivative():
    """MAT_k's hinge weighs a token 1 above lam and 0 below; ELU (alpha 1) weighs exp(x) below lam."""
    lam, delta = 2.0, 0.1
    losses = torch.tensor([3.0, 2.5, 1.0, 0.0], dtype=torch.float64)
    relu = weight_summary(losses, lam, delta, smoother="relu")
    assert relu["weight_sum"] == 2.0 and relu["below"] == {"0.5": 2, "0.1": 2, "0.01": 2}
    elu = weight_summary(losses, lam, delta, smoother="elu")
    assert elu["weight_sum"] == pytest.approx(1 + 1 + math.exp(-1) + math.exp(-2), rel=1e-12)


def test_the_pages_note_follows_the_recorded_smoothers():
    from stk_nmt.translation.study.render import weight_note

    assert "SReLU's derivative" in weight_note({"a": {"tokens_below_lam": {"smoothers": ["srelu"]}}})
    both = weight_note({"a": {"tokens_below_lam": {"smoothers": ["srelu"]}}, "b": {"tokens_below_lam": {"smoothers": ["relu"]}},
                        "c": {}})
    assert "1 above lam, 0 below" in both and "SReLU's derivative" in both
    assert "the derivative of the elu smoother" in weight_note({"a": {"tokens_below_lam": {"smoothers": ["elu"]}}})
