"""The perturbed top-k operator of Garcin et al. (ICML 2022): value and gradient, chunked over rows.

    top_{k,eps}(s) = E_Z[ top_k(s + eps Z) ] ~= (1/S) sum_b top_k(s + eps Z_b),   Z_b ~ N(0, I_L)

top_k(v) is the k-th largest entry of v. The gradient of the Monte-Carlo value w.r.t. s is
(1/S) sum_b onehot(index of the k-th largest entry of s + eps Z_b).

Semantics follow the reference package pytopk 0.1.0 (`pytopk.noised_topk._NoisedTopK`):
- the noise is one tensor Z of shape (B, L, S) (B rows, L entries per row, S draws), drawn as
  torch.randn(B, L, S) in float32 unless given; draw b of row i is scores[i] + eps * Z[i, :, b];
- the value is the mean over the S draws of the k-th largest perturbed entry (k counts from 1);
- eps = 0 gives the exact k-th largest entry.

What differs is the cost. pytopk materialises (B, L, S) tensors for s + eps Z, for its negation
and a dense (B, L, S) one-hot in backward, and selects with kthvalue over the strided L axis.
Here rows are processed in chunks: per chunk a (rows, L, S) buffer receives the scaled noise, the
perturbed scores go draw-major into a (rows, S, L) buffer, and torch.topk picks the k largest
per draw; only the (B, S) winning indices are kept, and backward is a single (B, L) scatter-add.
Same noise, same values.

Noise drawn here from a CPU generator in chunks of whole multiples of 16 elements (chosen
automatically; always possible when 16 rows fit in chunk_elements) equals the one-shot
torch.randn(B, L, S, generator=g) draw, because torch's CPU normal sampler works in blocks of 16:
the chunked path reproduces pytopk given the same seed.
Other devices draw per chunk too (same distribution, not the same numbers as a one-shot draw).

Noise only where it matters (select_draws dispatches, see docs/topk-hinge.md):
- "lazy" (and "auto", the default, when the noise is drawn here): each row's noise is drawn for the
  classes near its k-th largest score plus the largest few of the others (lazy_noise.py): the dense
  operator's result exactly in distribution, from other random numbers;
- "truncated" (and "auto" given a noise tensor): only the classes within truncation_margin of each
  row's k-th largest score are perturbed, with the given noise; the result is the dense one except
  with probability at most `tolerance` per row (union bound, see truncation_margin).
Rows with flat scores, where nearly every class is near the k-th largest, stay dense in "auto".
Off the CPU "auto" is dense: both other paths read candidate counts back to the host every call.
"""

from __future__ import annotations

import math
import numbers
from statistics import NormalDist
from typing import Optional, Tuple

import torch
from torch import nn

from ..precision import compute_dtype
from .lazy_noise import (
    LAZY_AUTO_MIN_CLASSES,
    LAZY_DENSE_FRACTION,
    LAZY_GROUPS,
    LAZY_MIN_CLASSES,
    lazy_draws,
    lazy_margin,
    lazy_thresholds,
)

# Elements of each of the two (rows, L, S) work buffers: 2**18 fp32 = 1 MiB, so the draw, the shift
# and the selection of a chunk stay in the core's cache (faster than 8 MiB chunks at (256, 1000, 5),
# no slower at (1024, 10000, 5)); the per-chunk Python cost is small against 2**18 normal draws.
DEFAULT_CHUNK_ELEMENTS = 1 << 18
# On other devices (GPU) there is no cache to fit, and every chunk costs a few kernel launches: 2**24
# elements (64 MiB fp32 per buffer) make a (4000 tokens x 32,000 words x 5) call 40 chunks, not 4,000.
ACCELERATOR_CHUNK_ELEMENTS = 1 << 24

# How the noise is drawn (see truncation_margin and select_draws):
# "dense" draws (B, L, S) noise, pytopk's operator exactly; "lazy" draws noise only where it can
# matter, exact in distribution; "truncated" perturbs only each row's candidate classes with given
# noise; "auto" is, on the CPU, lazy (drawn noise) or truncated (given noise) on the rows whose
# candidate set is small and dense elsewhere, and dense on other devices (auto_noise_mode).
NOISE_MODES = ("auto", "dense", "truncated", "lazy")
# Default bound on the probability, per row and call, that truncation changes the row's result.
DEFAULT_TOLERANCE = 1e-6
# "auto": a row whose candidate set holds more than this fraction of the L classes is computed
# densely (flat scores, early in training): beyond it, gathering and padding cost more than they save.
DENSE_FRACTION = 0.25



def check_scores(scores: torch.Tensor) -> Tuple[int, int]:
    if not isinstance(scores, torch.Tensor):
        raise ValueError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 2 or not scores.is_floating_point():
        raise ValueError(f"scores must be a 2-D floating tensor (B, L), got shape {tuple(scores.shape)}, dtype={scores.dtype}")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores is empty (shape {tuple(scores.shape)})")
    return scores.shape[0], scores.shape[1]


def check_topk_args(k, epsilon, n_samples, n_classes: Optional[int] = None, k_name: str = "k", k_max: Optional[int] = None) -> None:
    """k an integer in [1, k_max]; epsilon finite >= 0; n_samples an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{k_name} must be an integer >= 1, got {k_name}={k!r}")
    if k_max is not None and k > k_max:
        raise ValueError(f"{k_name} must be <= {k_max} for L={n_classes} classes, got {k_name}={k}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0, got epsilon={epsilon!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got n_samples={n_samples!r}")


def check_noise(noise: Optional[torch.Tensor], shape: Tuple[int, int, int], device: torch.device) -> None:
    if noise is None:
        return
    if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
        raise ValueError(f"noise must be a floating torch.Tensor of shape {shape}, got {noise!r:.60}")
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise must have shape (B, L, S) = {tuple(shape)}, got noise.shape={tuple(noise.shape)}")
    if noise.device != device:
        raise ValueError(f"noise is on {noise.device} but scores are on {device}")


def check_noise_for_mode(noise: Optional[torch.Tensor], noise_mode: str) -> None:
    if noise is not None and noise_mode == "lazy":
        raise ValueError("noise_mode='lazy' draws its own noise (only where it can matter) and cannot use a given "
                         "noise tensor: pass noise_mode='dense' or 'truncated' with noise=...")


def check_noise_mode(noise_mode, tolerance) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got noise_mode={noise_mode!r}")
    if (isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not math.isfinite(tolerance)
            or not 0 < tolerance < 1):
        raise ValueError(f"tolerance must be a number in (0, 1), got tolerance={tolerance!r}")


def truncation_margin(n_classes: int, k: int, n_samples: int, epsilon: float, tolerance: float) -> float:
    """The candidate margin m: classes scoring below (k-th largest score) - m are not perturbed.

    A class j outside the candidate set can change draw b only if s_j + eps Z_jb beats s_c + eps Z_cb
    for one of the k top classes c, whose score is more than m above s_j. eps (Z_jb - Z_cb) is
    N(0, 2 eps^2), so by a union bound over the (L - k) outside classes, the k top classes and the
    S draws, the row's result changes with probability at most

        S * k * (L - k) * Q(m / (eps sqrt 2))        Q = upper tail of N(0, 1),

    and m is chosen so that this equals `tolerance` (0 when no class can lie outside).
    """
    pairs = n_samples * k * (n_classes - k)
    if pairs <= 0 or epsilon == 0:
        return 0.0
    z = -NormalDist().inv_cdf(tolerance / pairs)  # Q^{-1}; accurate far into the tail
    return max(0.0, epsilon * math.sqrt(2.0) * z)


def chunk_rows(n_rows: int, row_elements: int, chunk_elements: Optional[int],
               device: Optional[torch.device] = None) -> int:
    """Rows per chunk: at most chunk_elements elements (None: DEFAULT_CHUNK_ELEMENTS on the CPU,
    ACCELERATOR_CHUNK_ELEMENTS on other devices), a whole multiple of 16 elements when possible.

    Multiples of 16 keep the chunked CPU noise draw identical to a one-shot draw (see module doc).
    """
    if chunk_elements is None:
        on_cpu = device is None or device.type == "cpu"
        chunk_elements = DEFAULT_CHUNK_ELEMENTS if on_cpu else ACCELERATOR_CHUNK_ELEMENTS
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, numbers.Integral) or chunk_elements < 1:
        raise ValueError(f"chunk_elements must be an integer >= 1 or None, got chunk_elements={chunk_elements!r}")
    if n_rows * row_elements <= chunk_elements:
        return n_rows
    unit = 16 // math.gcd(row_elements, 16)  # rows per 16-element-aligned step
    rows = max(1, chunk_elements // row_elements)
    if rows >= unit:
        rows -= rows % unit
    return min(rows, n_rows)


def kth_largest_draws(
    scores: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean over draws of the k-th largest of scores + eps Z_b, shape (B,), and its indices, (B, S).

    No argument checks (callers check). Values are in compute_dtype(scores.dtype).
    """
    n_rows, n_cols = scores.shape
    dtype = compute_dtype(scores.dtype)
    device = scores.device
    scores = scores.detach()
    if epsilon == 0:
        # The hard k-th largest: every draw selects the same entry, no noise needed.
        top = torch.topk(scores.to(dtype), k, dim=1)
        index = top.indices[:, k - 1 : k].expand(n_rows, n_samples).contiguous()
        return top.values[:, k - 1].contiguous(), index
    values = torch.empty(n_rows, dtype=dtype, device=device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=device)
    rows = chunk_rows(n_rows, n_cols * n_samples, chunk_elements, device)
    # eps * Z is formed in Z's dtype (fp32 when drawn here), then added to the scores, as in pytopk.
    noise_dtype = torch.float32 if noise is None else noise.dtype
    noise_buf = torch.empty(rows, n_cols, n_samples, dtype=noise_dtype, device=device)
    # The perturbed scores are written draw-major, (rows, S, L): topk along a contiguous axis is
    # faster than along the strided L axis of the (rows, L, S) noise layout.
    blocks = select_blocks(n_cols, k)
    padded = n_cols if blocks is None else blocks * BLOCK_WIDTH
    perturbed_buf = torch.empty(rows, n_samples, padded, dtype=dtype, device=device)
    perturbed_buf[:, :, n_cols:] = -math.inf  # padding of the blocked selection: never selected
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        z = noise_buf[: hi - lo]
        if noise is None:
            torch.randn(z.shape, generator=generator, out=z)
            if epsilon != 1.0:  # 1 * z == z exactly: skip a pass
                z.mul_(epsilon)
        else:
            torch.mul(noise[lo:hi], epsilon, out=z)
        perturbed = perturbed_buf[: hi - lo]
        # (eps Z) + s equals pytopk's s + (eps Z) bit for bit: IEEE addition commutes.
        torch.add(z.transpose(1, 2), scores[lo:hi, None, :], out=perturbed[:, :, :n_cols])
        kth, index = kth_along_last(perturbed, k, blocks)
        values[lo:hi] = kth.mean(dim=-1)
        indices[lo:hi] = index
    return values, indices


# Blocked selection: the classes are cut into BLOCK_WIDTH strided groups of `blocks` classes
# (class j is in block j % blocks); the k largest entries lie in the k blocks with the largest
# maxima (each of them is at most its block's maximum, and at most k blocks have a maximum at least
# the k-th largest), so a vectorised max over the groups, a top-k over the block maxima and one over
# the k * BLOCK_WIDTH gathered entries give torch.topk's k-th value and class, about 3x faster at
# L = 10,000. Small rows use torch.topk directly (the extra steps cost more than they save there).
BLOCK_WIDTH = 8
BLOCK_MIN_CLASSES = 4096


def select_blocks(n_cols: int, k: int) -> Optional[int]:
    """Blocks per row for the blocked selection, or None to use torch.topk."""
    if n_cols < BLOCK_MIN_CLASSES or 4 * k * BLOCK_WIDTH > n_cols:
        return None
    return -(-n_cols // BLOCK_WIDTH)


def kth_along_last(perturbed: torch.Tensor, k: int, blocks: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """k-th largest entry along the last axis and its position: (rows, S) each.

    With blocks, perturbed's last axis is blocks * BLOCK_WIDTH long, padded with -inf.
    """
    if blocks is None:
        top = torch.topk(perturbed, k, dim=2)  # (rows, S, k), sorted descending
        return top.values[:, :, k - 1], top.indices[:, :, k - 1]
    n_rows, n_samples = perturbed.shape[:2]
    block_max = perturbed.view(n_rows, n_samples, BLOCK_WIDTH, blocks).amax(dim=2)  # contiguous: vectorised
    best = torch.topk(block_max, k, dim=2).indices  # (rows, S, k)
    offsets = torch.arange(0, BLOCK_WIDTH * blocks, blocks, device=perturbed.device)
    index = (best[:, :, :, None] + offsets).view(n_rows, n_samples, k * BLOCK_WIDTH)
    top = torch.topk(perturbed.gather(2, index), k, dim=2)
    return top.values[:, :, k - 1], index.gather(2, top.indices[:, :, k - 1 : k]).squeeze(2)


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


def kth_largest_values(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 1): the k-th largest entry of each row of scores (B, L), by the blocked selection on wide
    rows (as the draws are), torch.topk otherwise; the same value either way."""
    n_rows, n_cols = scores.shape
    blocks = select_blocks(n_cols, k)
    if blocks is None:
        return torch.topk(scores, k, dim=1).values[:, k - 1 : k]
    padded = blocks * BLOCK_WIDTH
    if padded == n_cols:
        rows = scores.contiguous()
    else:
        rows = scores.new_full((n_rows, padded), -math.inf)
        rows[:, :n_cols] = scores
    return kth_along_last(rows.view(n_rows, 1, padded), k, blocks)[0]


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


def truncated_draws(
    cand_values: torch.Tensor,
    cand_index: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """kth_largest_draws restricted to each row's candidate classes.

    cand_values, cand_index: (R, C) candidate scores (compute dtype, -inf for padding) and classes,
    from gather_candidates. The noise is drawn for the candidates only, torch.randn(R, C, S) (fp32)
    per chunk, or gathered from a given (R, L, S) noise: then draw b perturbs every candidate
    exactly as the dense operator does, and the result is the dense one whenever no other class
    enters the top k of a draw (probability bounded by truncation_margin).
    Returns the mean k-th largest (R,) and the selected class indices (R, S), in [0, L).
    """
    n_rows, n_candidates = cand_values.shape
    values = torch.empty(n_rows, dtype=cand_values.dtype, device=cand_values.device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=cand_values.device)
    rows = chunk_rows(n_rows, n_candidates * n_samples, chunk_elements, cand_values.device)
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        if noise is None:
            z = torch.randn(hi - lo, n_candidates, n_samples, generator=generator, device=cand_values.device)
        else:
            z = noise[lo:hi].gather(1, cand_index[lo:hi, :, None].expand(-1, -1, n_samples))
        if epsilon != 1.0:  # z is a fresh tensor either way; 1 * z == z exactly
            z.mul_(epsilon)
        # Same operations, in the same dtypes, as the dense path: (eps Z) + s, then topk per draw.
        perturbed = torch.add(z.transpose(1, 2), cand_values[lo:hi, None, :])
        top = torch.topk(perturbed, k, dim=2)
        values[lo:hi] = top.values[:, :, k - 1].mean(dim=-1)
        indices[lo:hi] = cand_index[lo:hi].gather(1, top.indices[:, :, k - 1])
    return values, indices


def auto_noise_mode(device: torch.device, noise_given: bool, n_classes: int) -> str:
    """What noise_mode="auto" does: "dense" off the CPU (a GPU run then makes no host
    synchronisation in the operator: the lazy and truncated paths read the candidate counts back
    and redraw, several times a call) and below LAZY_AUTO_MIN_CLASSES drawn-noise classes; on the
    CPU "lazy" with drawn noise and "truncated" with a given noise tensor (each still dense on the
    rows with too many candidates)."""
    if device.type != "cpu":
        return "dense"
    if noise_given:
        return "truncated"
    return "lazy" if n_classes >= LAZY_AUTO_MIN_CLASSES else "dense"


def select_draws(
    scores: torch.Tensor,
    k: int,
    epsilon: float,
    n_samples: int,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
    noise_mode: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """kth_largest_draws (dense), its truncated twin or the lazy sampler, per noise_mode ("auto":
    see auto_noise_mode).

    "lazy" (and "auto" when the noise is drawn here, on the CPU) computes each row from its head, the classes
    within lazy_margin of the row's k-th largest score: exact in distribution (lazy_noise.py).
    "truncated" (and "auto" given a noise tensor, on the CPU) perturbs only the classes within
    truncation_margin, with the given noise: the dense result except with probability <= tolerance.
    Both find each row's candidates, which costs one device-to-host copy of the (B,) counts per
    call (the padded width must be known on the host; lazy rows add a few more, for repeated
    positions and completions, see lazy_noise.py), and compute densely the rows with too many
    candidates (more than LAZY_DENSE_FRACTION / DENSE_FRACTION of L; every row with "truncated") and
    those with fewer than k (a NaN k-th largest: NaN rows, as an fp16 overflow gives); when every
    row is such a row it is exactly the dense path (same draws from the same generator).
    """
    n_rows, n_cols = scores.shape
    mode = auto_noise_mode(scores.device, noise is not None, n_cols) if noise_mode == "auto" else noise_mode
    lazy = mode == "lazy"
    if mode == "dense" or epsilon == 0 or (lazy and n_cols < LAZY_MIN_CLASSES):
        return kth_largest_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
    if lazy:
        margin, limit = lazy_margin(n_cols, epsilon), LAZY_DENSE_FRACTION * n_cols
    else:
        margin = truncation_margin(n_cols, k, n_samples, epsilon, tolerance)
        limit = DENSE_FRACTION * n_cols if noise_mode == "auto" else n_cols
    s = scores.detach().to(compute_dtype(scores.dtype))
    if noise_mode != "truncated" and mostly_flat(s, margin, limit / n_cols):
        return kth_largest_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
    kth = kth_largest_values(s, k)
    thresholds = lazy_thresholds(s, kth, epsilon) if lazy else kth - margin
    mask = s >= thresholds
    counts = mask.sum(dim=1, dtype=torch.int32)  # int32: a third of the int64 count's time on CPU
    counts_host = counts.cpu()  # the one sync of the candidate search
    # Fewer than k candidates only happens where the k-th largest is NaN (a NaN row, as an fp16
    # overflow gives): the dense operator returns NaN there, as it would for the whole batch.
    dense = (counts_host > limit) | (counts_host < k)
    n_dense = int(dense.sum())
    if n_dense == n_rows:
        return kth_largest_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
    if not lazy and n_dense == 0:
        cand = gather_candidates(s, mask, counts, int(counts_host.max()))
        return truncated_draws(*cand, k, epsilon, n_samples, noise, generator, chunk_elements)

    values = torch.empty(n_rows, dtype=s.dtype, device=s.device)
    indices = torch.empty(n_rows, n_samples, dtype=torch.long, device=s.device)
    sparse_rows = (~dense).nonzero().squeeze(1)
    if lazy:
        # Rows sorted by head size and cut into groups, each padded to its own largest head: a batch
        # of tokens mixes confident rows (a few head classes) and flat ones (thousands), and one
        # width for all would make every row pay for the widest.
        by_size = sparse_rows[torch.argsort(counts_host[sparse_rows], stable=True)]
        n_groups = min(LAZY_GROUPS, by_size.numel())
        # One copy of the row order to the device for all groups (each copy waits for the device).
        for group, g in zip(torch.tensor_split(by_size, n_groups), torch.tensor_split(by_size.to(s.device), n_groups)):
            width = int(counts_host[group].max())
            rows_s, rows_mask, rows_counts = s[g], mask[g], counts[g]
            cand = gather_candidates(rows_s, rows_mask, rows_counts, width)
            values[g], indices[g] = lazy_draws(rows_s, rows_counts, thresholds[g], *cand, k, epsilon, n_samples,
                                               generator, chunk_elements)
    else:
        width = int(counts_host[sparse_rows].max())
        g = sparse_rows.to(s.device)
        cand = gather_candidates(s[g], mask[g], counts[g], width)
        values[g], indices[g] = truncated_draws(*cand, k, epsilon, n_samples, None if noise is None else noise[g],
                                                generator, chunk_elements)
    if n_dense:
        dense_rows = dense.nonzero().squeeze(1).to(s.device)
        values[dense_rows], indices[dense_rows] = kth_largest_draws(
            scores.detach()[dense_rows], k, epsilon, n_samples, None if noise is None else noise[dense_rows],
            generator, chunk_elements
        )
    return values, indices


def scatter_draws(shape, indices: torch.Tensor, row_weights: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A (B, L) tensor with row_weights[i] / S added at each of the S indices of row i, or, given
    rows (R,), of row rows[i] (indices and row_weights then have R rows; repeated rows add up)."""
    n_samples = indices.shape[1]
    grad = torch.zeros(shape, dtype=row_weights.dtype, device=row_weights.device)
    per_draw = (row_weights / n_samples)[:, None].expand(-1, n_samples)
    if rows is None:
        return grad.scatter_add_(1, indices, per_draw)
    flat = (rows[:, None] * shape[1] + indices).reshape(-1)
    grad.view(-1).index_add_(0, flat, per_draw.reshape(-1))
    return grad


class PerturbedTopKFunction(torch.autograd.Function):
    """forward(scores (B, L), k, epsilon, n_samples, noise, generator, chunk_elements, noise_mode,
    tolerance) -> (B,)."""

    @staticmethod
    def forward(ctx, scores, k, epsilon, n_samples, noise, generator, chunk_elements, noise_mode, tolerance):
        values, indices = select_draws(
            scores, k, epsilon, n_samples, noise, generator, chunk_elements, noise_mode, tolerance
        )
        ctx.save_for_backward(indices)
        ctx.meta = (tuple(scores.shape), scores.dtype)
        return values

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        shape, in_dtype = ctx.meta
        grad = scatter_draws(shape, indices, grad_out.to(compute_dtype(in_dtype)))
        return grad.to(in_dtype), None, None, None, None, None, None, None, None


def perturbed_topk(
    scores: torch.Tensor,
    k: int,
    epsilon: float = 1.0,
    n_samples: int = 5,
    *,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
    noise_mode: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
) -> torch.Tensor:
    """Perturbed k-th largest entry of each row of scores (B, L): a (B,) tensor, differentiable.

    Args:
        k: which largest entry, 1 <= k <= L (pytopk's NoisedTopK convention).
        epsilon: noise scale (>= 0; 0 is the exact k-th largest).
        n_samples: S, the number of noise draws.
        noise: optional Z of shape (B, L, S); otherwise drawn as torch.randn(B, L, S) (fp32) from
            `generator` (torch's default generator when None), chunk by chunk.
        chunk_elements: bound on each of the two (rows, L, S) work buffers (default 2**18 elements on
            the CPU, 2**24 on other devices).
        noise_mode: "dense" (pytopk's operator: noise on all L classes, pytopk's stream), "lazy"
            (noise only where it can matter: the same distribution of results, other numbers; no
            given noise), "truncated" (noise only on the classes within truncation_margin of each
            row's k-th largest score; changes a row's result with probability at most `tolerance`),
            or "auto" (lazy, or truncated given a noise tensor, where the candidate set is small;
            dense elsewhere). See docs/topk-hinge.md.
    """
    n_rows, n_cols = check_scores(scores)
    check_topk_args(k, epsilon, n_samples, n_cols, k_max=n_cols)
    check_noise(noise, (n_rows, n_cols, n_samples), scores.device)
    check_noise_mode(noise_mode, tolerance)
    check_noise_for_mode(noise, noise_mode)
    return PerturbedTopKFunction.apply(scores, int(k), float(epsilon), int(n_samples), noise, generator, chunk_elements,
                                       noise_mode, float(tolerance))


class PerturbedTopK(nn.Module):
    """nn.Module twin of perturbed_topk; forward(scores, noise=None) -> (B,)."""

    def __init__(self, k: int, epsilon: float = 1.0, n_samples: int = 5, generator: Optional[torch.Generator] = None,
                 chunk_elements: Optional[int] = None, noise_mode: str = "auto", tolerance: float = DEFAULT_TOLERANCE):
        super().__init__()
        check_topk_args(k, epsilon, n_samples)
        chunk_rows(1, 1, chunk_elements)  # validates chunk_elements
        check_noise_mode(noise_mode, tolerance)
        self.k, self.epsilon, self.n_samples = int(k), float(epsilon), int(n_samples)
        self.generator, self.chunk_elements = generator, chunk_elements
        self.noise_mode, self.tolerance = noise_mode, float(tolerance)

    def forward(self, scores: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        return perturbed_topk(scores, self.k, self.epsilon, self.n_samples, noise=noise, generator=self.generator,
                              chunk_elements=self.chunk_elements, noise_mode=self.noise_mode, tolerance=self.tolerance)

    def extra_repr(self) -> str:
        return f"k={self.k}, epsilon={self.epsilon}, n_samples={self.n_samples}, noise_mode={self.noise_mode!r}"
