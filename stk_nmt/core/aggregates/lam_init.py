"""lam's first value: one rule for every training loop that holds a lam (the core's STk/MATk, the
fairseq criteria, the experiments' batched grids).

The rule:
- A lam built without lam_init holds LAM_UNSET (0.0) and is *unset*. Its first training batch sets
  it to that batch's k-th largest valid loss, averaged over the processes where it is finite: that
  is where the optimum of ST_k over lam lies, so top-k selection is active from the first update.
- A lam that holds any other value before that batch was set by hand (`lam.fill_(x)`,
  `lam.data.copy_(...)`, a loaded state) and is kept as it is. lam_init=x, a loaded checkpoint and
  `LambdaForm.set_lam(x)` mark lam as set outright, 0.0 included: the one value a plain fill_
  cannot tell from "unset".
- Whether lam is set is stored with it (the `lam_initialized` buffer, in state_dict), so a
  resumed run never re-initialises it.

Why a value and not a separate "set by hand" call only: writing into lam directly is how users
(and optimizers, and checkpoints) set a parameter; a rule that needed an API call would silently
overwrite the value they wrote, which is the defect this rule exists to avoid.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..distributed import sum_over_processes

LAM_UNSET = 0.0


def lam_is_set(lam: torch.Tensor, initialized: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bool tensor shaped like lam, on its device (no read-back): lam holds a value to keep,
    because `initialized` says so or because it no longer holds LAM_UNSET."""
    chosen = lam.detach() != LAM_UNSET
    return chosen if initialized is None else chosen | initialized


@torch.no_grad()
def first_lam(lam: torch.Tensor, kth: torch.Tensor, over_processes: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """(value, ready), shaped like lam, without reading anything back from the device.

    value: lam where it was set by hand (lam != LAM_UNSET); elsewhere kth, the batch's k-th largest
    loss (one per element of lam), averaged over the processes where it is finite (over_processes;
    a collective: every process must call it) and kth itself where it is finite on none.
    ready: False where lam is unset and no process has a finite kth (an fp16 overflow): such an
    element should stay unset rather than take a NaN/inf lam.
    """
    lam = lam.detach()
    kth = kth.detach().to(lam.dtype).reshape(lam.shape)
    finite = torch.isfinite(kth)
    both = torch.stack([torch.where(finite, kth, 0.0), finite.to(lam.dtype)])
    if over_processes:
        both = sum_over_processes(both)
    found = both[1] > 0
    # Without processes and with a finite kth, sum / count = kth / 1 = kth exactly.
    mean = torch.where(found, both[0] / torch.clamp(both[1], min=1.0), kth)
    chosen = lam_is_set(lam)
    return torch.where(chosen, lam, mean), chosen | found
