"""Each row's candidate classes, the ones its noise must cover on the lazy and truncated paths:
a cheap look for rows too flat to gain from them, and the packing of the candidates."""

from __future__ import annotations

import math

import torch

# "auto": a row whose candidate set holds more than this fraction of the L classes is computed
# densely (flat scores, early in training): beyond it, gathering and padding cost more than they save.
DENSE_FRACTION = 0.25


def mostly_flat(scores: torch.Tensor, margin: float, dense_fraction: float = DENSE_FRACTION, sample_columns: int = 128,
                sample_rows: int = 256) -> bool:
    """A cheap look before counting candidates: True when, in 99% of an evenly spaced sample of at
    most sample_rows rows or more, more than 1.5 * dense_fraction of a strided sample of the columns
    lies within the margin of the row's maximum.

    Those classes are all candidates (the k-th largest score is at most the maximum), so such rows
    would take the dense path anyway (the sample's standard error, under 0.045 for 128 columns,
    keeps a row below dense_fraction from passing); the few others (a row whose maximum stands out)
    go dense with them. The row sample keeps the look's cost fixed (a max over every row would be a
    full pass over the scores on the truncated path too). It only ever chooses the dense path,
    which is exact, so it cannot change a result.
    """
    rows = scores[:: max(1, scores.shape[0] // sample_rows)]
    step = max(1, rows.shape[1] // sample_columns)
    near = rows[:, ::step] >= rows.amax(dim=1, keepdim=True) - margin
    return bool((near.float().mean(dim=1) > min(0.95, 1.5 * dense_fraction)).float().mean() >= 0.99)


def gather_candidates(scores: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor, width: int):
    """Each row's candidates packed to `width` columns: (values, class indices), both (B, width).

    One nonzero pass over the mask instead of a top-`width` selection (which costs as much as the
    dense draw once width is a tenth of L). Rows with fewer candidates are padded with score -inf
    (class 0): -inf + noise is -inf, never among a draw's k largest, as every row has >= k candidates.
    """
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: each row's candidates are contiguous
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(rows.numel(), device=rows.device) - starts[rows]
    values = torch.full((scores.shape[0], width), -math.inf, dtype=scores.dtype, device=scores.device)
    index = torch.zeros(scores.shape[0], width, dtype=torch.long, device=scores.device)
    values[rows, slot] = scores[rows, cols]
    index[rows, slot] = cols
    return values, index
