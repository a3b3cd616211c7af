"""One check of the aggregate settings for every door, naming each setting as that door spells it:
fairseq's flags (--stk-k-ratio 1.5), the Hugging Face arguments (stk_k_ratio=1.5), the vision CLI's
flags (--k-ratio 1.5)."""

import pytest

from stk_nmt.core.aggregates.settings import FLAGS, PYTHON_NAMES, check_aggregate_settings
from stk_nmt.vision.train import VISION_FLAGS

DOORS = {"fairseq": FLAGS, "hf": PYTHON_NAMES, "vision": VISION_FLAGS}


@pytest.mark.parametrize("values,messages", [
    ({"stk_k_ratio": 1.5}, {"fairseq": "--stk-k-ratio must be in (0, 1], got --stk-k-ratio 1.5",
                            "hf": "stk_k_ratio must be in (0, 1], got stk_k_ratio=1.5",
                            "vision": "--k-ratio must be in (0, 1], got --k-ratio 1.5"}),
    ({"stk_k": 0}, {"fairseq": "--stk-k must be an integer >= 1, got --stk-k 0",
                    "hf": "stk_k must be an integer >= 1, got stk_k=0", "vision": "--k must be an integer >= 1, got --k 0"}),
    ({"stk_k": 3, "stk_k_ratio": 0.5}, {"fairseq": "give --stk-k or --stk-k-ratio, not both: got --stk-k 3 --stk-k-ratio 0.5",
                                        "hf": "give stk_k or stk_k_ratio, not both: got stk_k=3 stk_k_ratio=0.5",
                                        "vision": "give --k or --k-ratio, not both: got --k 3 --k-ratio 0.5"}),
    ({"stk_aggregate": "mean"}, {
        "fairseq": "--stk-aggregate must be one of ('average', 'maximum', 'atk', 'matk', 'stk'), got --stk-aggregate mean",
        "hf": "stk_aggregate must be one of ('average', 'maximum', 'atk', 'matk', 'stk'), got stk_aggregate='mean'",
        "vision": "--aggregate must be one of ('average', 'maximum', 'atk', 'matk', 'stk'), got --aggregate mean"}),
    ({"stk_lam_lr": float("nan")}, {"fairseq": "--stk-lam-lr must be a finite number > 0, got --stk-lam-lr nan",
                                    "hf": "stk_lam_lr must be a finite number > 0, got stk_lam_lr=nan",
                                    "vision": "--lam-lr must be a finite number > 0, got --lam-lr nan"}),
])
@pytest.mark.parametrize("door", DOORS)
def test_one_validator_names_the_setting_as_each_door_spells_it(values, messages, door):
    with pytest.raises(ValueError) as error:
        check_aggregate_settings(values, DOORS[door])
    assert str(error.value) == messages[door]


def test_valid_settings_pass_at_every_door():
    for names in DOORS.values():
        check_aggregate_settings({"stk_aggregate": "stk", "stk_k": 3, "stk_delta": 0.01, "stk_lam_init": None,
                                  "stk_lam_lr": 1.0}, names)


def test_the_vision_cli_refuses_a_bad_k_ratio_naming_its_flag(tmp_path):
    from stk_nmt.vision import train

    with pytest.raises(ValueError) as error:
        train.main(["--dataset", "sklearn-digits-lt", "--k-ratio", "1.5", "--save-dir", str(tmp_path)])
    assert str(error.value) == "--k-ratio must be in (0, 1], got --k-ratio 1.5"
