"""Stochastically smoothed top-K calibrated hinge losses (Garcin et al., ICML 2022).

    balanced:    l_i = ( 1 + top^_{K+1,eps,S}(s_i) - s_{i,y_i} )_+
    imbalanced:  l_i = ( scale * (m_{y_i} + top^_{K+1,eps,S}(s_i) - s_{i,y_i}) )_+
    margins:     m_c = max_m * (n_min / n_c)^(1/4), n_c the training count of class c

top^ is the perturbed operator of perturbed.py (the hinge is applied after averaging the S
draws). K is the K of the top-K metric; the operator looks at the (K+1)-th largest score, as
pytopk 0.1.0 (`bal_noised_topk_loss`, `imbal_noised_topk_loss`) does. The balanced loss is the
imbalanced one with every margin 1 and scale 1, so both share one code path.

reduction="none" returns the per-example losses, so any core aggregate (average, AT_k, ST_k...)
combines with them: build_aggregate("stk", k_ratio=0.96)(noised_topk_hinge(..., reduction="none")).

The loss is one autograd Function: its backward writes the whole (B, L) gradient with two
scatter-adds (the S selected entries, and the true class), instead of autograd's separate
gather-backward and operator-backward tensors that would then be summed.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import torch
from torch import nn

from ...arguments import ArgumentNames, bad_argument
from ...defaults import IMBALANCED_EPSILON, IMBALANCED_SCALE, TOPK_EPSILON, TOPK_SAMPLES
from ...precision import compute_dtype, keep_fp32
from ..checks import check_labels
from .checks import check_noise, check_noise_for_mode, check_noise_mode, check_scores, check_topk_args
from .chunks import chunk_rows
from .perturbed import scatter_draws, select_draws
from .truncated import DEFAULT_TOLERANCE

REDUCTIONS = ("mean", "sum", "none")


def class_margins(class_counts: Union[Sequence[float], torch.Tensor], max_m: float, *,
                  names: ArgumentNames = None) -> torch.Tensor:
    """m_c = max_m * (n_min / n_c)^(1/4) as fp32, computed like pytopk's ImbalNoisedTopK.

    The rarest class gets max_m; a class 16 times more frequent gets max_m / 2. names: how errors
    name the arguments (core/arguments.py).
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64).detach().cpu()
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    bad = ~(torch.isfinite(counts) & (counts > 0))
    if bool(bad.any()):
        c = int(bad.nonzero()[0])
        raise ValueError(
            f"class_counts must be finite and > 0 for every class (a margin needs n_c > 0), "
            f"got class_counts[{c}]={float(counts[c])!r} ({int(bad.sum())} bad class(es))"
        )
    if isinstance(max_m, bool) or not isinstance(max_m, numbers.Real) or not math.isfinite(max_m) or max_m < 0:
        raise bad_argument("max_m", "must be a finite number >= 0", max_m, names)
    inv = 1.0 / counts.pow(0.25)
    return (inv * (max_m / inv.max())).to(torch.float32)


def _check_rows(rows) -> None:
    """The form of rows (its range is checked with the labels', in one read-back)."""
    if not isinstance(rows, torch.Tensor) or rows.dim() != 1 or rows.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"rows must be a 1-D int64/int32 torch.Tensor of row indices, got {rows!r:.80}")
    if rows.numel() == 0:
        raise ValueError("rows is empty: no row to compute the loss of")


def _check_scale(scale, names: ArgumentNames = None) -> None:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
        raise bad_argument("scale", "must be a finite number > 0", scale, names)


class TopKHingeFunction(torch.autograd.Function):
    """forward(scores, labels, margins (L,) or None, k, epsilon, n_samples, scale, noise, generator,
    chunk_elements, noise_mode, tolerance, rows (R,) or None) -> per-example losses in
    compute_dtype(scores.dtype): (B,), or (R,) for the rows `rows` of scores."""

    @staticmethod
    def forward(ctx, scores, labels, margins, k, epsilon, n_samples, scale, noise, generator, chunk_elements,
                noise_mode, tolerance, rows=None):
        dtype = compute_dtype(scores.dtype)
        full_shape = tuple(scores.shape)
        if rows is not None:
            # A plain copy outside autograd: the backward writes the (B, L) gradient directly,
            # without autograd's index backward (a zero (B, L) tensor and an index_put of the rows).
            scores = scores.detach()[rows]
        kth, indices = select_draws(
            scores, k + 1, epsilon, n_samples, noise, generator, chunk_elements, noise_mode, tolerance
        )
        correct = scores.detach().gather(1, labels[:, None]).squeeze(1).to(dtype)
        # Same order of operations as pytopk: (m + top) - s_y, then the scale, then the hinge
        # (1 + top is pytopk's ones-tensor + top, bit for bit: IEEE addition commutes).
        if margins is None:
            arg = (kth + 1.0).sub_(correct)
        else:
            arg = margins.to(device=kth.device, dtype=dtype)[labels].add_(kth).sub_(correct)
        if scale != 1.0:
            arg = scale * arg
        losses = torch.relu(arg)
        ctx.save_for_backward(labels, indices, arg > 0, rows)
        ctx.meta = (full_shape, scores.dtype, scale)
        return losses

    @staticmethod
    def backward(ctx, grad_out):
        labels, indices, active, rows = ctx.saved_tensors
        shape, in_dtype, scale = ctx.meta
        # d l_i / d s_i = scale * 1[l_i > 0] * (mean of the S one-hots - onehot(y_i))
        weights = grad_out.to(compute_dtype(in_dtype)) * active * scale
        grad = scatter_draws(shape, indices, weights, rows)
        if rows is None:
            grad.scatter_add_(1, labels[:, None], -weights[:, None])
        else:
            grad.view(-1).index_add_(0, rows * shape[1] + labels, -weights)
        return grad.to(in_dtype), None, None, None, None, None, None, None, None, None, None, None, None


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got reduction={reduction!r}")


def noised_topk_hinge(
    scores: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    epsilon: float = TOPK_EPSILON,
    n_samples: int = TOPK_SAMPLES,
    *,
    margins: Optional[torch.Tensor] = None,
    scale: float = 1.0,
    reduction: str = "mean",
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    chunk_elements: Optional[int] = None,
    noise_mode: str = "auto",
    tolerance: float = DEFAULT_TOLERANCE,
    rows: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Smoothed top-K hinge loss of scores (B, L) against labels (B,).

    Balanced when margins is None (margin 1; pass scale=1), imbalanced with per-class margins (L,)
    (see class_margins). K in [1, L-1]: the operator reads the (K+1)-th largest score.
    noise: optional Z (B, L, S); otherwise torch.randn(B, L, S) in chunks from `generator`.
    reduction: "mean" (pytopk's output), "sum", or "none" for the (B,) per-example losses.
    noise_mode, tolerance: "dense" is pytopk's operator and stream; "lazy" draws noise only where it
    can matter (the same distribution of losses and gradients, other random numbers); "truncated"
    perturbs only the classes near each row's (K+1)-th score with the given noise (a row's loss
    changes with probability at most `tolerance`); "auto" (default) is, on the CPU, lazy, or truncated
    given a noise tensor, on the rows where that is cheaper, and dense on a GPU (no host
    synchronisation; see perturbed.auto_noise_mode, docs/topk-hinge.md).
    rows: optional 1-D integer tensor (R,): the loss of scores[rows] only, as
    noised_topk_hinge(scores[rows], labels, ...) with labels and noise of R rows, but the gradient
    goes straight into a (B, L) gradient of scores (zero on the other rows), without autograd's
    copy of the selected rows (the criterion's non-padding tokens).
    """
    n_all_rows, n_cols = check_scores(scores)
    n_rows = n_all_rows
    if rows is not None:
        _check_rows(rows)
        rows, n_rows = rows.to(device=scores.device, dtype=torch.long), rows.numel()
    check_topk_args(k, epsilon, n_samples, n_cols, k_name="k (the top-K of the loss)", k_max=n_cols - 1)
    check_labels(labels, n_rows, n_cols, rows, n_all_rows)
    _check_scale(scale)
    _check_reduction(reduction)
    check_noise(noise, (n_rows, n_cols, n_samples), scores.device)
    chunk_rows(1, 1, chunk_elements)
    check_noise_mode(noise_mode, tolerance)
    check_noise_for_mode(noise, noise_mode)
    if margins is not None:
        if not isinstance(margins, torch.Tensor) or tuple(margins.shape) != (n_cols,):
            raise ValueError(f"margins must be a tensor of shape (L,) = ({n_cols},), got {getattr(margins, 'shape', margins)!r}")
    losses = TopKHingeFunction.apply(
        scores, labels.long(), margins, int(k), float(epsilon), int(n_samples), float(scale), noise, generator, chunk_elements,
        noise_mode, float(tolerance), rows,
    )
    return _reduce(losses, reduction)


def balanced_topk_hinge(scores, labels, k, epsilon=TOPK_EPSILON, n_samples=TOPK_SAMPLES, **kwargs) -> torch.Tensor:
    """(1 + top^_{K+1,eps,S}(s) - s_y)_+ ; keyword arguments as noised_topk_hinge."""
    return noised_topk_hinge(scores, labels, k, epsilon, n_samples, **kwargs)


def imbalanced_topk_hinge(scores, labels, k, margins, epsilon=IMBALANCED_EPSILON, n_samples=TOPK_SAMPLES,
                          scale=IMBALANCED_SCALE, **kwargs) -> torch.Tensor:
    """(scale * (m_y + top^_{K+1,eps,S}(s) - s_y))_+ ; scale 50 is pytopk's default (cosine logits; 1 for
    plain logits), eps 0.01 the paper's imbalanced setting (core/defaults.py says why)."""
    return noised_topk_hinge(scores, labels, k, epsilon, n_samples, margins=margins, scale=scale, **kwargs)


class BalancedTopKHinge(nn.Module):
    """Balanced smoothed top-K hinge; forward(scores (B, L), labels (B,), noise=None).

    Same arguments and defaults as pytopk.BalNoisedTopK(k, epsilon, n_samples=5), plus reduction,
    a torch.Generator for the noise, and the chunk bound. argument_names: how the constructor's
    errors name its arguments ({argument: flag} for an adapter that reads them from flags; see
    core/arguments.py).
    """

    def __init__(self, k: int, epsilon: float = TOPK_EPSILON, n_samples: int = TOPK_SAMPLES, reduction: str = "mean",
                 generator: Optional[torch.Generator] = None, chunk_elements: Optional[int] = None,
                 noise_mode: str = "auto", tolerance: float = DEFAULT_TOLERANCE,
                 argument_names: ArgumentNames = None):
        super().__init__()
        check_topk_args(k, epsilon, n_samples, k_name="k (the top-K of the loss)", names=argument_names)
        _check_reduction(reduction)
        chunk_rows(1, 1, chunk_elements, names=argument_names)
        check_noise_mode(noise_mode, tolerance, names=argument_names)
        self.k, self.epsilon, self.n_samples, self.reduction = int(k), float(epsilon), int(n_samples), reduction
        self.generator, self.chunk_elements = generator, chunk_elements
        self.noise_mode, self.tolerance = noise_mode, float(tolerance)

    def _margins_and_scale(self):
        return None, 1.0

    def forward(self, scores: torch.Tensor, labels: torch.Tensor, noise: Optional[torch.Tensor] = None,
                rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        margins, scale = self._margins_and_scale()
        return noised_topk_hinge(
            scores, labels, self.k, self.epsilon, self.n_samples, margins=margins, scale=scale, reduction=self.reduction,
            noise=noise, generator=self.generator, chunk_elements=self.chunk_elements, noise_mode=self.noise_mode,
            tolerance=self.tolerance, rows=rows,
        )

    def extra_repr(self) -> str:
        return (f"k={self.k}, epsilon={self.epsilon}, n_samples={self.n_samples}, reduction={self.reduction!r}, "
                f"noise_mode={self.noise_mode!r}")


class ImbalancedTopKHinge(BalancedTopKHinge):
    """Imbalanced smoothed top-K hinge with margins from class counts (pytopk.ImbalNoisedTopK).

    scale=50 is the reference default, meant for a cosine (normalised) last layer; use scale=1 with
    plain logits. The margins are an fp32 buffer that follows .to(device) but not .half().
    """

    def __init__(self, k: int, epsilon: float, max_m: float, class_counts, scale: float = IMBALANCED_SCALE,
                 n_samples: int = TOPK_SAMPLES,
                 reduction: str = "mean", generator: Optional[torch.Generator] = None,
                 chunk_elements: Optional[int] = None, noise_mode: str = "auto", tolerance: float = DEFAULT_TOLERANCE,
                 argument_names: ArgumentNames = None):
        super().__init__(k, epsilon, n_samples, reduction, generator, chunk_elements, noise_mode, tolerance,
                         argument_names)
        _check_scale(scale, argument_names)
        self.scale, self.max_m = float(scale), float(max_m)
        # Not saved in state_dict: the margins are a function of the constructor's counts.
        self.register_buffer("margins", class_margins(class_counts, max_m, names=argument_names), persistent=False)

    def _apply(self, fn, recurse=True):
        # The margins stay fp32 under .half() (fairseq --fp16 halves the criterion): only the device follows.
        return keep_fp32(self, ("margins",), super()._apply, fn, recurse)

    def _margins_and_scale(self):
        return self.margins, self.scale

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_m={self.max_m}, scale={self.scale}, classes={self.margins.numel()}"
