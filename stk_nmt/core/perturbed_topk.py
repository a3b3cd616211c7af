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
Here rows are processed in chunks: per chunk one (rows, L, S) buffer receives the noise, is
scaled and shifted in place, and torch.topk picks the k largest per draw; only the (B, S) winning
indices are kept, and backward is a single (B, L) scatter-add. Same noise, same values.

Noise drawn here from a CPU generator in chunks of whole multiples of 16 elements (chosen
automatically) equals the one-shot torch.randn(B, L, S, generator=g) draw, because torch's CPU
normal sampler works in blocks of 16: the chunked path reproduces pytopk given the same seed.
Other devices draw per chunk too (same distribution, not the same numbers as a one-shot draw).
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple

import torch
from torch import nn

# Elements of one (rows, L, S) work buffer: 2**22 fp32 = 16 MiB, small enough to stay mostly in
# cache between the draw, the shift and the selection, large enough that the loop is cheap.
DEFAULT_CHUNK_ELEMENTS = 1 << 22


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; everything else is computed in fp32 (pytopk's noise is fp32)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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


def chunk_rows(n_rows: int, row_elements: int, chunk_elements: Optional[int]) -> int:
    """Rows per chunk: at most chunk_elements elements, a whole multiple of 16 elements when possible.

    Multiples of 16 keep the chunked CPU noise draw identical to a one-shot draw (see module doc).
    """
    if chunk_elements is None:
        chunk_elements = DEFAULT_CHUNK_ELEMENTS
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
    rows = chunk_rows(n_rows, n_cols * n_samples, chunk_elements)
    # eps * Z is formed in Z's dtype (fp32 when drawn here), then added to the scores, as in pytopk.
    noise_dtype = torch.float32 if noise is None else noise.dtype
    noise_buf = torch.empty(rows, n_cols, n_samples, dtype=noise_dtype, device=device)
    perturbed_buf = noise_buf if noise_dtype == dtype else torch.empty(rows, n_cols, n_samples, dtype=dtype, device=device)
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        z = noise_buf[: hi - lo]
        if noise is None:
            torch.randn(z.shape, generator=generator, out=z)
            z.mul_(epsilon)
        else:
            torch.mul(noise[lo:hi], epsilon, out=z)
        perturbed = perturbed_buf[: hi - lo]
        # (eps Z) + s equals pytopk's s + (eps Z) bit for bit: IEEE addition commutes.
        torch.add(z, scores[lo:hi, :, None], out=perturbed)
        top = torch.topk(perturbed, k, dim=1)  # (rows, k, S), sorted descending along dim 1
        values[lo:hi] = top.values[:, k - 1, :].mean(dim=-1)
        indices[lo:hi] = top.indices[:, k - 1, :]
    return values, indices


def scatter_draws(shape, indices: torch.Tensor, row_weights: torch.Tensor) -> torch.Tensor:
    """A (B, L) tensor with row_weights[i] / S added at each of the S indices of row i."""
    n_samples = indices.shape[1]
    grad = torch.zeros(shape, dtype=row_weights.dtype, device=row_weights.device)
    per_draw = (row_weights / n_samples)[:, None].expand(-1, n_samples)
    return grad.scatter_add_(1, indices, per_draw)


class PerturbedTopKFunction(torch.autograd.Function):
    """forward(scores (B, L), k, epsilon, n_samples, noise, generator, chunk_elements) -> (B,)."""

    @staticmethod
    def forward(ctx, scores, k, epsilon, n_samples, noise, generator, chunk_elements):
        values, indices = kth_largest_draws(scores, k, epsilon, n_samples, noise, generator, chunk_elements)
        ctx.save_for_backward(indices)
        ctx.meta = (tuple(scores.shape), scores.dtype)
        return values

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        shape, in_dtype = ctx.meta
        grad = scatter_draws(shape, indices, grad_out.to(compute_dtype(in_dtype)))
        return grad.to(in_dtype), None, None, None, None, None, None


def perturbed_topk(
    scores: torch.Tensor,
    k: int,
    epsilon: float = 1.0,
    n_samples: int = 5,
    *,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
) -> torch.Tensor:
    """Perturbed k-th largest entry of each row of scores (B, L): a (B,) tensor, differentiable.

    Args:
        k: which largest entry, 1 <= k <= L (pytopk's NoisedTopK convention).
        epsilon: noise scale (>= 0; 0 is the exact k-th largest).
        n_samples: S, the number of noise draws.
        noise: optional Z of shape (B, L, S); otherwise drawn as torch.randn(B, L, S) (fp32) from
            `generator` (torch's default generator when None), chunk by chunk.
        chunk_elements: bound on the (rows, L, S) work buffer (default 2**22 elements).
    """
    n_rows, n_cols = check_scores(scores)
    check_topk_args(k, epsilon, n_samples, n_cols, k_max=n_cols)
    check_noise(noise, (n_rows, n_cols, n_samples), scores.device)
    return PerturbedTopKFunction.apply(scores, int(k), float(epsilon), int(n_samples), noise, generator, chunk_elements)


class PerturbedTopK(nn.Module):
    """nn.Module twin of perturbed_topk; forward(scores, noise=None) -> (B,)."""

    def __init__(self, k: int, epsilon: float = 1.0, n_samples: int = 5, generator: Optional[torch.Generator] = None,
                 chunk_elements: Optional[int] = None):
        super().__init__()
        check_topk_args(k, epsilon, n_samples)
        chunk_rows(1, 1, chunk_elements)  # validates chunk_elements
        self.k, self.epsilon, self.n_samples = int(k), float(epsilon), int(n_samples)
        self.generator, self.chunk_elements = generator, chunk_elements

    def forward(self, scores: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        return perturbed_topk(scores, self.k, self.epsilon, self.n_samples, noise=noise, generator=self.generator,
                              chunk_elements=self.chunk_elements)

    def extra_repr(self) -> str:
        return f"k={self.k}, epsilon={self.epsilon}, n_samples={self.n_samples}"
