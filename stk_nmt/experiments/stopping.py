"""The paper's early-stopping rule, for G models at once: stop a model once its validation metric has
not gained at least `min_gain` over its best value for `patience` consecutive checks, and roll back
to the best check (the caller keeps whatever it measured at that check: the test metric, weights).

Paper (Section 5.1): "validation-accuracy gain below 1e-6 after 50 steps, then roll back to the best
checkpoint". Here a step is one validation check; our metrics are errors (lower is better), so the
gain of a check is best_so_far - value.
"""

from __future__ import annotations

import torch


class EarlyStopping:
    """Per-model patience counters over a (G,) validation metric, lower is better.

    update(values) returns the mask of models whose value is a new best (gain >= min_gain over the
    previous best, and not yet stopped); `best`, `best_step` and `stopped` describe the state.
    A stopped model never improves again: its best check is final (the rollback point).
    """

    def __init__(self, G: int, patience: int = 50, min_gain: float = 1e-6):
        if G < 1:
            raise ValueError(f"G must be >= 1, got G={G}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got patience={patience}")
        if min_gain < 0:
            raise ValueError(f"min_gain must be >= 0, got min_gain={min_gain}")
        self.patience, self.min_gain = patience, min_gain
        self.best = torch.full((G,), float("inf"), dtype=torch.float64)
        self.best_step = torch.full((G,), -1, dtype=torch.long)
        self.waited = torch.zeros(G, dtype=torch.long)
        self.stopped = torch.zeros(G, dtype=torch.bool)
        self.step = 0

    def update(self, values: torch.Tensor) -> torch.Tensor:
        values = torch.nan_to_num(values.detach().to(torch.float64), nan=float("inf"))
        if values.shape != self.best.shape:
            raise ValueError(f"values must have shape {tuple(self.best.shape)}, got {tuple(values.shape)}")
        # The first finite value is always a best (inf - value is inf); later ones need the gain.
        improved = ((self.best - values) >= self.min_gain) & torch.isfinite(values) & ~self.stopped
        self.best = torch.where(improved, values, self.best)
        self.best_step = torch.where(improved, torch.full_like(self.best_step, self.step), self.best_step)
        self.waited = torch.where(improved, torch.zeros_like(self.waited), self.waited + (~self.stopped).long())
        self.stopped |= self.waited >= self.patience
        self.step += 1
        return improved

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the models `rows` (a 1-D index tensor), in that order."""
        self.best, self.best_step = self.best[rows], self.best_step[rows]
        self.waited, self.stopped = self.waited[rows], self.stopped[rows]

    @property
    def all_stopped(self) -> bool:
        return bool(self.stopped.all())
