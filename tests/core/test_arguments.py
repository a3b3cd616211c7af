"""The core's argument checks name the Python argument, or the flag an adapter says it came from."""

import pytest

from stk_nmt.core import BalancedTopKHinge, ImbalancedTopKHinge
from stk_nmt.core.arguments import arg_value


def test_a_python_argument_is_named_with_its_repr_and_a_flag_as_typed():
    assert arg_value("noise_mode", "sparse") == "noise_mode='sparse'"
    assert arg_value("noise_mode", "sparse", {"noise_mode": "--noise"}) == "--noise sparse"


@pytest.mark.parametrize("kwargs,python,flag", [
    (dict(epsilon=-1.0), "epsilon must be a finite number >= 0, got epsilon=-1.0",
     "--eps must be a finite number >= 0, got --eps -1.0"),
    (dict(noise_mode="sparse"), "noise_mode must be one of ('auto', 'dense', 'truncated', 'lazy'), got noise_mode='sparse'",
     "--noise must be one of ('auto', 'dense', 'truncated', 'lazy'), got --noise sparse"),
    (dict(scale=0.0), "scale must be a finite number > 0, got scale=0.0", "--scale must be a finite number > 0, got --scale 0.0"),
])
def test_one_check_serves_the_python_api_and_the_flags(kwargs, python, flag):
    args = {**dict(k=2, epsilon=0.1, max_m=0.2, class_counts=[5, 3, 2], scale=1.0), **kwargs}
    names = {"epsilon": "--eps", "noise_mode": "--noise", "scale": "--scale"}
    with pytest.raises(ValueError) as error:
        ImbalancedTopKHinge(**args)
    assert str(error.value) == python
    with pytest.raises(ValueError) as error:
        ImbalancedTopKHinge(**args, argument_names=names)
    assert str(error.value) == flag
    if "scale" not in kwargs:
        with pytest.raises(ValueError, match="^--"):
            BalancedTopKHinge(2, **kwargs, argument_names=names)
