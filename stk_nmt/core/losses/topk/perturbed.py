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
  classes near its k-th largest score plus the largest few of the others (lazy.py): the dense
  operator's result exactly in distribution, from other random numbers;
- "truncated" (and "auto" given a noise tensor): only the classes within truncation_margin of each
  row's k-th largest score are perturbed, with the given noise; the result is the dense one except
  with probability at most `tolerance` per row (union bound, see truncation_margin).
Rows with flat scores, where nearly every class is near the k-th largest, stay dense in "auto".
Off the CPU "auto" is dense: both other paths read candidate counts back to the host every call.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ...precision import compute_dtype
from ...selection import select_kth_largest
from .candidates import DENSE_FRACTION, gather_candidates, mostly_flat
from .checks import NOISE_MODES, check_noise, check_noise_for_mode, check_noise_mode, check_scores, check_topk_args
from .chunks import chunk_rows
from .dense import dense_draws
from .lazy import (
    LAZY_AUTO_MIN_CLASSES,
    LAZY_DENSE_FRACTION,
    LAZY_GROUPS,
    LAZY_MIN_CLASSES,
    lazy_draws,
    lazy_margin,
    lazy_thresholds,
)
from .truncated import DEFAULT_TOLERANCE, truncated_draws, truncation_margin

__all__ = ["NOISE_MODES", "DEFAULT_TOLERANCE", "PerturbedTopK", "perturbed_topk", "select_draws", "scatter_draws",
           "auto_noise_mode"]


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
    """dense_draws (dense), its truncated twin or the lazy sampler, per noise_mode ("auto":
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
        return dense_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
    if lazy:
        margin, limit = lazy_margin(n_cols, epsilon), LAZY_DENSE_FRACTION * n_cols
    else:
        margin = truncation_margin(n_cols, k, n_samples, epsilon, tolerance)
        limit = DENSE_FRACTION * n_cols if noise_mode == "auto" else n_cols
    s = scores.detach().to(compute_dtype(scores.dtype))
    if noise_mode != "truncated" and mostly_flat(s, margin, limit / n_cols):
        return dense_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
    kth = select_kth_largest(s, k)[:, None]
    thresholds = lazy_thresholds(s, kth, epsilon) if lazy else kth - margin
    mask = s >= thresholds
    counts = mask.sum(dim=1, dtype=torch.int32)  # int32: a third of the int64 count's time on CPU
    counts_host = counts.cpu()  # the one sync of the candidate search
    # Fewer than k candidates only happens where the k-th largest is NaN (a NaN row, as an fp16
    # overflow gives): the dense operator returns NaN there, as it would for the whole batch.
    dense = (counts_host > limit) | (counts_host < k)
    n_dense = int(dense.sum())
    if n_dense == n_rows:
        return dense_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
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
        values[dense_rows], indices[dense_rows] = dense_draws(
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
