"""AggregateKind: what one aggregate is, in every form a door needs.

One subclass per aggregate, in a file of its own (average.py, maximum.py, atk.py, matk.py,
stk.py), registered by name with @register_aggregate (registry.py). A subclass gives:

- `name` (the value of --stk-aggregate / stk_aggregate / --aggregate), `label` (the paper's name
  in tables and figures), `arguments` (the build arguments it uses, of k, k_ratio, delta, smoother,
  lam_init: the adapters warn about the others) and `holds_lam` (a trainable threshold lam);
- `build(...)`: the plain form, an nn.Module (core.Aggregate) with forward(losses, mask=None);
- `masked_k(n, k, k_ratio)` and `masked_total(...)`: the masked form for training loops that must
  not read anything back from the device (the fairseq criteria, the Hugging Face loss), with n and
  k as device tensors; `sorts_with_grad` says that masked_total reads the sorted losses with their
  gradient (`sorted_desc`, one sort shared with the logged k-th largest loss);
- `batched(losses, k, lam, delta)`: one aggregate per row of a (G, B) loss matrix, each row with
  its own k, lam and delta (the experiments' grids);
- `initial_lam(lam, kth)`: lam's first value, by the one rule of lam_init.py (kept as it is here).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..lam_init import first_lam
from ..masked import resolve_k_tensor
from ..modules import Aggregate


class AggregateKind:
    name: str = ""
    label: str = ""
    arguments: Tuple[str, ...] = ()
    holds_lam: bool = False
    sorts_with_grad: bool = False

    @property
    def uses_k(self) -> bool:
        """Whether k (a count or a ratio) means anything to this aggregate."""
        return "k" in self.arguments

    @property
    def uses_delta(self) -> bool:
        return "delta" in self.arguments

    def build(self, k: Optional[int] = None, k_ratio: Optional[float] = None, delta: float = 0.01,
              smoother: str = "srelu", lam_init: Optional[float] = None, clip_k: bool = False) -> Aggregate:
        """The plain form: an nn.Module with forward(losses, mask=None) -> scalar."""
        raise NotImplementedError(f"aggregate {self.name!r} has no build()")

    def masked_k(self, n: torch.Tensor, k: Optional[int], k_ratio: Optional[float]):
        """(k, clipped) as device tensors for n valid items (clipped None when no count is clipped)."""
        return resolve_k_tensor(n, k, k_ratio)

    def masked_total(self, losses: torch.Tensor, mask: torch.Tensor, n: torch.Tensor, k: torch.Tensor,
                     lam: Optional[torch.Tensor] = None, *, smoother: str = "srelu", delta: float = 0.01,
                     sorted_desc: Optional[torch.Tensor] = None) -> torch.Tensor:
        """n * A over the valid losses, with n and k as tensors (0 when n = 0); see masked.py."""
        raise NotImplementedError(f"aggregate {self.name!r} has no masked_total()")

    def batched(self, losses: torch.Tensor, k: Optional[torch.Tensor] = None, lam: Optional[torch.Tensor] = None,
                delta=None) -> torch.Tensor:
        """(G, B) losses -> (G,) values, row g with k[g], lam[g], delta[g]; see batched.py."""
        raise NotImplementedError(f"aggregate {self.name!r} has no batched()")

    def initial_lam(self, lam: torch.Tensor, kth: torch.Tensor, over_processes: bool = True):
        """(value, ready) for an unset lam: lam_init.first_lam, the one rule of every training loop."""
        return first_lam(lam, kth, over_processes)

    def needs_lam(self, lam) -> None:
        if lam is None:
            raise ValueError(f"the {self.name} aggregate needs lam")
