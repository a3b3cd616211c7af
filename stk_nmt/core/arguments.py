"""How the core's argument checks name what they refuse.

A check names the Python argument and its value (`epsilon must be ..., got epsilon=-1.0`). An
adapter that takes the arguments from command-line flags passes `names` ({argument: flag}) to the
core's constructors and checks, and the same check then names the flag as the user typed it
(`--topk-eps must be ..., got --topk-eps -1.0`): one validator for both, no rewriting of messages.
"""

from __future__ import annotations

from typing import Mapping, Optional

ArgumentNames = Optional[Mapping[str, str]]


def arg_name(arg: str, names: ArgumentNames = None) -> str:
    """The name of argument `arg` in an error message: its flag when `names` gives one."""
    return (names or {}).get(arg, arg)


def arg_value(arg: str, value, names: ArgumentNames = None) -> str:
    """`name=value` for a Python argument, `--flag value` for a command-line flag (as typed)."""
    name = arg_name(arg, names)
    return f"{name} {value}" if name.startswith("-") else f"{name}={value!r}"


def bad_argument(arg: str, requirement: str, value, names: ArgumentNames = None) -> ValueError:
    """ValueError('<name> <requirement>, got <name and value>')."""
    return ValueError(f"{arg_name(arg, names)} {requirement}, got {arg_value(arg, value, names)}")
