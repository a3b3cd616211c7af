"""ST_k with SReLU in one pass over the losses, forward and backward fused.

    ST_k(l, lam) = (1/n) sum_i SReLU_d(l_i - lam) + (k/n) lam
    d/dl_i  = (1/n) SReLU_d'(l_i - lam)
    d/dlam  = k/n - (1/n) sum_i SReLU_d'(l_i - lam)

Autograd over the unfused formula stores several n-sized intermediates and walks them again in
backward. Here the forward reads the losses once, chunk by chunk so the temporaries stay in cache,
and writes the gradient w.r.t. the losses straight into one buffer; backward only scales that
buffer by the incoming gradient (in place) and hands it over. Memory: one fp32 copy of the losses.
All arithmetic runs in fp32 (fp64 for fp64 losses), half losses included. A backward that builds a
graph (create_graph=True: Hessian-vector products, gradient penalties) recomputes the gradient
from differentiable ops instead, so higher-order derivatives are exact.
This is written by hand because no library offers a fused ST_k; torch.compile would need a
compiler toolchain at run time and recompiles per shape.
"""

from __future__ import annotations

import math
import threading

import torch

from ..precision import compute_dtype
from .smoothers import srelu_grad


# Elements per chunk: the fp32 temporaries of this size stay in L2/L3 cache.
CHUNK = 1 << 18


_workspace = threading.local()


def _chunk_buffers(size: int, dtype: torch.dtype, device: torch.device):
    """Two reusable temporaries of `size` elements, kept per thread, dtype and device.

    Allocating them anew on every call costs page faults that rival the arithmetic.
    """
    cache = getattr(_workspace, "buffers", None)
    if cache is None:
        cache = _workspace.buffers = {}
    key = (dtype, device)
    buf = cache.get(key)
    if buf is None or buf.shape[1] < size:
        buf = cache[key] = torch.empty(2, max(size, CHUNK if device.type == "cpu" else size), dtype=dtype, device=device)
    return buf[0, :size], buf[1, :size]


def _square_bound(dtype: torch.dtype) -> float:
    """C^2 for a power of two C far below sqrt(finfo.max): 2^120 in fp32, 2^1016 in fp64."""
    return 2.0 ** (2 * (math.frexp(torch.finfo(dtype).max)[1] // 2 - 4))


def _one_pass(losses: torch.Tensor, lam: torch.Tensor, delta: float):
    """Fill grad_buf[i] = SReLU'(l_i - lam) / n chunk by chunk; return it with (1/n) sum SReLU(l_i - lam),
    and sum grad_buf.

    Per chunk, with x = l - lam and ir = 1/sqrt(x^2 + d^2): grad = 0.5/n + (0.5/n) x ir, and since
    SReLU(x) = x SReLU'(x) + (d/2)(d ir - 1), (1/n) sum SReLU = sum x grad + (d^2/2n) sum ir - d/2:
    a dot product and sums, no extra buffer, and no difference of two large sums.
    It also holds where x^2 would overflow (|x| > ~1.8e19 in fp32): x^2 + d^2 is capped at C^2
    (C ~1e18), so beyond C |x ir| > 1 and grad, clamped to [0, 1/n], is exactly 1/n or 0; x itself
    is never clamped, so the value stays right. The cap is always on: checking whether a square
    overflowed would read a result back to the host (a device sync on a GPU); on ordinary losses
    it changes nothing.
    """
    n = losses.numel()
    dtype = compute_dtype(losses.dtype)
    device = losses.device
    upcast = losses.dtype != dtype
    lam_c = lam.detach().to(dtype)
    delta_sq = torch.tensor(delta * delta, dtype=dtype, device=device)
    scale = torch.tensor(0.5 / n, dtype=dtype, device=device)
    grad_buf = torch.empty(n, dtype=dtype, device=device)
    x_buf, ir_buf = _chunk_buffers(min(n, CHUNK), dtype, device)
    n_chunks = (n + CHUNK - 1) // CHUNK
    width = 3
    sums = torch.empty(n_chunks, width, dtype=dtype, device=device)
    # All result slots in one op: indexing them chunk by chunk costs more than a small chunk's math.
    slots = sums.view(-1).unbind()
    for i in range(n_chunks):
        if n_chunks == 1:
            chunk, x, ir, g = losses, x_buf, ir_buf, grad_buf
        else:
            lo, hi = i * CHUNK, min(n, (i + 1) * CHUNK)
            chunk, x, ir, g = losses[lo:hi], x_buf[:hi - lo], ir_buf[:hi - lo], grad_buf[lo:hi]
        sum_xg, sum_ir, sum_g = slots[width * i:width * i + 3]
        if upcast:
            # Half losses: upcast before subtracting (a 0-dim fp32 lam does not promote them, and
            # l - lam would be rounded to half precision).
            x.copy_(chunk)
            x.sub_(lam_c)
        else:
            torch.sub(chunk, lam_c, out=x)
        torch.addcmul(delta_sq, x, x, out=ir)
        ir.clamp_(max=_square_bound(dtype))
        ir.rsqrt_()
        torch.addcmul(scale, x, ir, value=0.5 / n, out=g)
        g.clamp_(0.0, 1.0 / n)
        torch.dot(x, g, out=sum_xg)
        torch.sum(ir, 0, out=sum_ir)
        torch.sum(g, 0, out=sum_g)
    totals = slots if n_chunks == 1 else sums.sum(0).unbind()
    mean_srelu = torch.add(totals[0], totals[1], alpha=0.5 * delta * delta / n).sub_(0.5 * delta)
    return grad_buf, mean_srelu, totals[2]


def _differentiable_grads(losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float):
    """d/dl_i and d/dlam from autograd-tracked ops, for a backward that builds a graph."""
    n = losses.numel()
    dtype = compute_dtype(losses.dtype)
    grad_losses = srelu_grad(losses.to(dtype) - lam.to(dtype), delta) / n
    return grad_losses, k / n - grad_losses.sum()


class FusedSTkFunction(torch.autograd.Function):
    """forward(losses 1-D, lam 0-dim, k int, delta float) -> scalar ST_k in at least fp32."""

    @staticmethod
    def forward(ctx, losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float):
        n = losses.numel()
        grad_buf, mean_srelu, sum_g = _one_pass(losses, lam, delta)
        value = torch.add(mean_srelu, lam.detach().to(grad_buf.dtype), alpha=k / n)
        ctx.grad_buf = grad_buf
        ctx.lam_grad = k / n - sum_g  # sum_g already carries the 1/n
        ctx.meta = (n, k, delta, losses.dtype)
        ctx.save_for_backward(losses, lam)
        return value

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        n, k, delta, in_dtype = ctx.meta
        losses, lam = ctx.saved_tensors
        grad_buf = ctx.grad_buf
        ctx.grad_buf = None
        if torch.is_grad_enabled():
            # create_graph=True: the precomputed buffer is a constant to autograd, so its own
            # derivatives (the curvature of SReLU) would be silently dropped.
            grad_buf, lam_grad = _differentiable_grads(losses, lam, k, delta)
        elif grad_buf is None:
            # A second backward through a retained graph: the first one handed its buffer over.
            grad_buf, _, sum_g = _one_pass(losses, lam, delta)
            lam_grad = k / n - sum_g
        else:
            lam_grad = ctx.lam_grad
        grad_losses = grad_lam = None
        if ctx.needs_input_grad[0]:
            if torch.is_grad_enabled():
                grad_buf = grad_buf * grad_out
            else:
                # Always scale: testing for grad_out == 1 would read it back to the host.
                grad_buf.mul_(grad_out)
            grad_losses = grad_buf.to(in_dtype)
        if ctx.needs_input_grad[1]:
            grad_lam = (grad_out * lam_grad).to(lam.dtype)
        return grad_losses, grad_lam, None, None


def fused_st_k(losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float) -> torch.Tensor:
    """ST_k with SReLU over a 1-D tensor of valid losses (no argument checks: see st_k)."""
    return FusedSTkFunction.apply(losses.contiguous(), lam, k, delta)
