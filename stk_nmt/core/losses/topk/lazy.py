"""Lazy noise for the perturbed top-k operator: the dense operator's result, exact in distribution,
drawing noise only where it can matter.

For one row s (L scores) and one draw, the dense operator takes the k-th largest of v = s + eps Z,
Z ~ N(0, I_L). Split the classes at a threshold thr = (k-th largest score) - d:

- the head, s_j >= thr (the candidates of select_draws): their noise is drawn as usual;
- the tail, s_j < thr (n classes): their n noise values are iid N(0, 1). Draw only the m largest of
  them (the top m order statistics of n normals, from uniform spacings: given the largest U_(n) of
  n uniforms, the rest are iid uniform below it, so U_(n) = V_1^(1/n), U_(n-1) = U_(n) V_2^(1/(n-1)),
  ...; Z_(i) = Phi^-1(U_(i))) and place them at m distinct tail classes chosen uniformly at random.
  Every other tail class j then has v_j = s_j + eps z_j < thr + eps Z_(m) =: bound.

If the k-th largest u of the head and placed values is above the bound, no other class can enter
the draw's top k: u and its class are those of the full vector. Otherwise the draw is completed:
an unplaced tail class can only beat u if s_j > u - eps Z_(m); those classes get their noise, iid
N(0, 1) truncated below Z_(m) (the law of the unplaced values given the m largest; drawn by
rejection from torch.randn), and join the candidates. Adding candidates only raises the k-th
largest, so every other class stays below it. Either way the result is a draw of the dense
operator's (value, selected class) law, with no tolerance: what changes is only which numbers the
generator produces (not pytopk's stream: use noise_mode="dense" for that).

thr is per row: kth - d with d = eps * Phi^-1(1 - m / L), which puts the bound near the k-th
largest score, or kth - d - 2 eps where that head still holds at most WIDE_HEAD classes (see
lazy_thresholds).

Cost per row: the head and m placed values per draw, instead of L; plus the candidate search of
select_draws (shared with the truncated path: a k-th largest, comparisons and counts over the
scores, the packing). The position sampling and the completions cost a few host synchronisations
per call.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Optional, Tuple

import torch

from .candidates import gather_candidates
from .chunks import chunk_rows

# m: tail order statistics drawn per row and draw. More lowers the bound (a smaller head) but costs
# m placed values per draw and more repeated positions to redraw; 8 was the fastest of 2, 4, 8, 16
# at (256, 1000) and within 10% of 16 at (64, 10000) and (4096, 10000) (S = 5, k = 6, 2 * randn).
TAIL_DRAWS = 8
# Rows whose head holds more than this fraction of the L classes are computed densely: with flat
# scores (N(0, 1) logits over 8,008 classes: a head of 46%) lazy rows cost twice the dense ones, at
# a 13% head 0.6 of them, at 5% 0.45 (1024 x 8008, S = 5, k = 6, one CPU thread).
LAZY_DENSE_FRACTION = 0.25
# Lazy rows are sorted by head size and computed in this many groups, each padded to its own
# largest head.
LAZY_GROUPS = 4
# Below this many classes the operator is computed densely (the head and the m placed values would
# be most of the row).
LAZY_MIN_CLASSES = 64
# "auto" uses lazy rows from this many classes: below, the candidate search, packing and position
# sampling cost about what they save (256 x 1000, S = 5, 2 * randn: lazy 9.7-14.9 ms, dense 9.8-17.0
# ms over four runs).
LAZY_AUTO_MIN_CLASSES = 2048
# Smallest work budget of a chunk of rows, in elements of the (rows, S, head + m) candidates (16 MiB).
LAZY_CHUNK_ELEMENTS = 1 << 22


# A row whose head under the wider margin d + WIDE_SHIFT * eps still holds at most WIDE_HEAD classes
# takes that margin: when eps is small against the gaps between the top scores (eps = 0.01 on
# logits), the narrow margin leaves u just at the bound and about 40% of the draws to complete
# (1000 x 8004, S = 5: 270 ms a call against 70 ms with the wider margin). Exactness holds for any
# per-row threshold.
WIDE_SHIFT = 2.0
WIDE_HEAD = 64


def lazy_margin(n_classes: int, epsilon: float, tail_draws: int = TAIL_DRAWS) -> float:
    """d: the head is the classes scoring at least (k-th largest score) - d."""
    return epsilon * NormalDist().inv_cdf(1.0 - tail_draws / n_classes)


def lazy_thresholds(scores: torch.Tensor, kth: torch.Tensor, epsilon: float) -> torch.Tensor:
    """(R, 1) per-row head thresholds: kth - d - WIDE_SHIFT * eps where that head holds at most
    WIDE_HEAD classes, kth - d elsewhere (one more comparison and count over the scores)."""
    margin = lazy_margin(scores.shape[1], epsilon)
    wide = kth - (margin + WIDE_SHIFT * epsilon)
    small = (scores >= wide).sum(dim=1, keepdim=True, dtype=torch.int32) <= WIDE_HEAD
    return torch.where(small, wide, kth - margin)


def tail_order_statistics(tail_sizes: torch.Tensor, n_samples: int, m: int,
                          generator: Optional[torch.Generator]) -> torch.Tensor:
    """(R, S, m) fp32, descending: the m largest of tail_sizes[r] iid N(0, 1), for each row r and draw.

    log U_(n-i) = sum_{j <= i} log(V_j) / (n - j), in fp64 (the uniforms' log near 1 needs it);
    Z = -Phi^-1(1 - U), accurate in the upper tail.
    """
    n_rows = tail_sizes.shape[0]
    device = tail_sizes.device
    uniform = torch.rand(n_rows, n_samples, m, generator=generator, device=device, dtype=torch.float64)
    uniform.clamp_(min=torch.finfo(torch.float64).tiny)  # log(0): probability 2^-53 per number
    steps = tail_sizes.to(torch.float64)[:, None] - torch.arange(m, device=device, dtype=torch.float64)
    log_u = torch.cumsum(uniform.log_() / steps[:, None, :], dim=2).float()
    return torch.special.ndtri(torch.expm1(log_u).neg_()).neg_()


def tail_positions(cand_index: torch.Tensor, head_counts: torch.Tensor, n_cols: int, n_samples: int, m: int,
                   generator) -> torch.Tensor:
    """(R, S, m) class indices: for each row and draw, m distinct tail classes, as a uniformly random
    ordered choice.

    cand_index (R, C): each row's head classes in ascending order (gather_candidates' order), the
    first head_counts[r] of them (the rest is padding). A uniform rank i in [0, n) among the row's
    n tail classes maps to the i-th tail class, i + #{j : h_j - j <= i} for the sorted head classes
    h_j (h_j - j tail classes lie below h_j): one searchsorted, no rejection. Ranks are
    floor(U * n) with U a float64 uniform (a bias of at most n / 2^53). A draw with a repeated rank
    is redrawn whole, which leaves the tuples without repeats, each equally likely.
    """
    n_rows, width = cand_index.shape
    device = cand_index.device
    slots = torch.arange(width, device=device)
    # Non-decreasing per row (h_{j+1} >= h_j + 1); padding sorts last and is never counted.
    keys = torch.where(slots < head_counts[:, None], cand_index - slots, n_cols)
    tail_sizes = (n_cols - head_counts).to(torch.float64)

    def ranks(rows: torch.Tensor) -> torch.Tensor:
        u = torch.rand(rows.numel(), m, generator=generator, device=device, dtype=torch.float64)
        return (u * tail_sizes[rows, None]).long()  # < n: U < 1 and the product rounds below n

    draw_rows = torch.arange(n_rows, device=device).repeat_interleave(n_samples)  # row of each (row, draw)
    rank = ranks(draw_rows)
    later = torch.ones(m, m, dtype=torch.bool, device=device).tril(-1)
    todo = None  # draws to check: all, then only the redrawn ones
    while True:
        drawn = rank if todo is None else rank[todo]
        repeated = ((drawn[:, :, None] == drawn[:, None, :]) & later).any(dim=2).any(dim=1).nonzero().squeeze(1)
        if repeated.numel() == 0:
            break
        todo = repeated if todo is None else todo[repeated]
        rank[todo] = ranks(draw_rows[todo])
    rank = rank.view(n_rows, n_samples * m)
    return (rank + torch.searchsorted(keys, rank, right=True)).view(n_rows, n_samples, m)


def truncated_normal_below(bounds: torch.Tensor, n_cols: int, generator) -> torch.Tensor:
    """(P, n_cols) fp32: iid N(0, 1) conditioned below bounds[p], by rejection from torch.randn
    (the bounds are upper order statistics, about 2-3: a few percent redrawn per round)."""
    z = torch.randn(bounds.shape[0], n_cols, generator=generator, device=bounds.device)
    while True:
        over = (z >= bounds[:, None]).nonzero(as_tuple=True)
        if over[0].numel() == 0:
            return z
        z[over] = torch.randn(over[0].numel(), generator=generator, device=bounds.device)


def lazy_draws(
    scores: torch.Tensor,
    head_counts: torch.Tensor,
    thresholds: torch.Tensor,
    cand_values: torch.Tensor,
    cand_index: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
    tail_draws: int = TAIL_DRAWS,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean k-th largest of the S draws (R,) and the selected classes (R, S), as dense_draws,
    exact in distribution, from the head (candidates) of each row.

    scores (R, L) in the compute dtype; the head of row r is the classes with scores >= thresholds[r]
    (thresholds (R, 1)), head_counts (R,) their numbers (each <= L - m); cand_values, cand_index
    (R, C): the head packed by gather_candidates in ascending class order (-inf padding).
    """
    n_rows, n_cols = scores.shape
    width = cand_values.shape[1]
    m = tail_draws
    device, dtype = scores.device, scores.dtype
    values = torch.empty(n_rows, dtype=dtype, device=device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=device)
    # Each chunk's (rows, S, C + m) candidates: at least LAZY_CHUNK_ELEMENTS (a chunk's fixed
    # cost, some 40 small operations, must stay small against its work).
    rows = chunk_rows(n_rows, (width + m) * n_samples, max(chunk_elements or 0, LAZY_CHUNK_ELEMENTS))
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        r = hi - lo
        head_z = torch.randn(r, n_samples, width, generator=generator, device=device)  # contiguous: the fast sampler
        if epsilon != 1.0:
            head_z.mul_(epsilon)
        tail_z = tail_order_statistics(n_cols - head_counts[lo:hi], n_samples, m, generator)
        tail_scaled = tail_z * epsilon if epsilon != 1.0 else tail_z
        where = tail_positions(cand_index[lo:hi], head_counts[lo:hi], n_cols, n_samples, m, generator)
        # The candidates of each draw: head (eps Z) + s, then the m placed tail values; same
        # operations and dtypes as the dense path.
        perturbed = torch.empty(r, n_samples, width + m, dtype=dtype, device=device)
        torch.add(head_z, cand_values[lo:hi, None, :], out=perturbed[:, :, :width])
        tail_scores = scores[lo:hi].gather(1, where.view(r, -1)).view(r, n_samples, m)
        torch.add(tail_scaled, tail_scores, out=perturbed[:, :, width:])
        top = torch.topk(perturbed, k, dim=2)
        kth, slot = top.values[:, :, k - 1], top.indices[:, :, k - 1]
        # The class at each slot: a head class (slot < width) or a placed one.
        head_class = cand_index[lo:hi].gather(1, slot.clamp(max=width - 1))
        placed_class = where.gather(2, (slot - width).clamp_(min=0)[:, :, None]).squeeze(2)
        chosen = torch.where(slot < width, head_class, placed_class)
        # Every unplaced tail class is below thr + eps Z_(m): strictly above it, u is the draw's.
        complete = ~(kth > thresholds[lo:hi] + tail_scaled[:, :, m - 1])
        pairs = complete.nonzero(as_tuple=True)
        if pairs[0].numel():
            kth[pairs], chosen[pairs] = _complete(scores[lo:hi], thresholds[lo:hi], cand_index[lo:hi], where, tail_z,
                                                  tail_scaled, perturbed, chosen, kth, pairs, k, epsilon, generator)
        values[lo:hi] = kth.mean(dim=1)
        indices[lo:hi] = chosen
    return values, indices


def _complete(scores, thresholds, cand_index, where, tail_z, tail_scaled, perturbed, chosen, kth, pairs, k, epsilon,
              generator):
    """The k-th largest and its class for the draws `pairs` (row, draw) whose bound failed.

    An unplaced tail class j has noise below Z_(m), so it can only beat the current k-th largest
    u if s_j > u - eps Z_(m): those classes (few, unless the scores are flat) get their noise,
    N(0, 1) truncated below Z_(m) (the conditional law of the unplaced values given the m largest),
    and join the draw's candidates. Adding candidates only raises the k-th largest, so every other
    class stays below it: the result is the full vector's."""
    row, draw = pairs
    m = tail_z.shape[2]
    lower = kth[pairs] - tail_scaled[row, draw, m - 1]
    row_scores = scores[row]
    more = row_scores > lower[:, None]
    more &= row_scores < thresholds[row]  # the tail
    more.scatter_(1, where[row, draw], False)
    counts = more.sum(dim=1, dtype=torch.int32)
    width = int(counts.max())
    if width == 0:  # the bound was loose: no class can change the draw
        return kth[pairs], chosen[pairs]
    values, index = gather_candidates(row_scores, more, counts, width)
    z = truncated_normal_below(tail_z[row, draw, m - 1], width, generator)
    if epsilon != 1.0:
        z.mul_(epsilon)
    top = torch.topk(torch.cat([perturbed[row, draw], torch.add(z, values)], dim=1), k, dim=1)
    all_classes = torch.cat([cand_index[row], where[row, draw], index], dim=1)
    return top.values[:, k - 1], all_classes.gather(1, top.indices[:, k - 1 : k]).squeeze(1)
