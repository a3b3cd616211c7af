"""The vision CLI's top-K hinge flags carry the fairseq criteria's names; the old spellings still work and warn."""

import pytest

from stk_nmt.vision.train import build_parser

NEW = ["--topk-k", "3", "--topk-eps", "0.25", "--topk-samples", "7"]
OLD = ["--topk", "3", "--epsilon", "0.25", "--n-samples", "7"]
RENAMED = {"--topk": "--topk-k", "--epsilon": "--topk-eps", "--n-samples": "--topk-samples"}


def parsed(argv):
    args = build_parser().parse_args([*argv, "--save-dir", "unused"])
    return args.topk, args.epsilon, args.n_samples


def test_the_fairseq_spellings_set_k_eps_and_samples_silently(capsys):
    assert parsed(NEW) == (3, 0.25, 7)
    assert capsys.readouterr().err == ""


def test_each_old_spelling_gives_the_same_value_and_names_the_new_flag(capsys):
    assert parsed(OLD) == parsed(NEW)
    err = capsys.readouterr().err
    for old, new in RENAMED.items():
        assert f"warning: {old} is deprecated, use {new}" in err
    assert err.count("deprecated") == 3


@pytest.mark.parametrize("flag", ["--topk-k", "--topk"])
def test_both_spellings_keep_the_positive_check(flag, capsys):
    with pytest.raises(SystemExit):
        parsed([flag, "0"])
    assert "must be > 0, got 0" in capsys.readouterr().err
