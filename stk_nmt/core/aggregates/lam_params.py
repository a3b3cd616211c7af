"""Optimizer parameter groups for the trainable thresholds lam of the lambda-form aggregates.

lam is easy to forget: a lam that never reaches an optimizer never moves and ST_k silently
degrades. Its group carries no weight decay by default (decay would pull lam towards 0).
"""

from __future__ import annotations

from typing import Iterable, Optional

from torch import nn

from .lambda_forms import LambdaForm, lam_group  # noqa: F401  (lam_group: importable from here too)


def lam_parameters(module: nn.Module) -> list:
    """Every lam of the lambda-form aggregates (STk, MATk) inside `module`."""
    return [m.lam for m in module.modules() if isinstance(m, LambdaForm)]


def lam_param_groups(
    modules: Iterable[nn.Module] | nn.Module, lr: Optional[float] = None, weight_decay: float = 0.0,
    others: bool = True,
) -> list:
    """Parameter groups [other params, lam params] for torch.optim over one or more modules.

    Example: torch.optim.SGD(lam_param_groups([model, stk], lr=0.1), lr=0.01, weight_decay=5e-4)
    optimises lam at lr 0.1 without weight decay and everything else with the optimizer defaults.
    others=False: the lam group alone (for a caller that lists the other parameters itself). A
    group without parameters is left out.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    lams, rest, seen = [], [], set()
    for module in modules:
        module_lams = {id(p) for p in lam_parameters(module)}
        for p in module.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            (lams if id(p) in module_lams else rest).append(p)
    groups = [{"params": rest}] if rest and others else []
    if lams:
        groups.append(lam_group(lams, lr, weight_decay))
    return groups
