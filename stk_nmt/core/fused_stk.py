"""ST_k with SReLU in one pass over the losses, forward and backward fused.

    ST_k(l, lam) = (1/n) sum_i SReLU_d(l_i - lam) + (k/n) lam
    d/dl_i  = (1/n) SReLU_d'(l_i - lam)
    d/dlam  = k/n - (1/n) sum_i SReLU_d'(l_i - lam)

Autograd over the unfused formula stores several n-sized intermediates and walks them again in
backward. Here the forward reads the losses once, chunk by chunk so the temporaries stay in cache,
and writes the gradient w.r.t. the losses straight into one buffer; backward only scales that
buffer by the incoming gradient (in place) and hands it over. Memory: one fp32 copy of the losses.
A backward that builds a graph (create_graph=True: Hessian-vector products, gradient penalties)
recomputes the gradient from differentiable ops instead, so higher-order derivatives are exact.
This is written by hand because no library offers a fused ST_k; torch.compile would need a
compiler toolchain at run time and recompiles per shape.
"""

from __future__ import annotations

import threading

import torch


# Elements per chunk: two fp32 temporaries of this size (2 MiB) stay in L2/L3 cache.
CHUNK = 1 << 18


_workspace = threading.local()


def _chunk_buffers(size: int, dtype: torch.dtype, device: torch.device):
    """Three reusable temporaries of `size` elements, kept per thread, dtype and device.

    Allocating them anew on every call costs page faults that rival the arithmetic.
    """
    cache = getattr(_workspace, "buffers", None)
    if cache is None:
        cache = _workspace.buffers = {}
    key = (dtype, device)
    buf = cache.get(key)
    if buf is None or buf.shape[1] < size:
        buf = cache[key] = torch.empty(3, max(size, CHUNK if device.type == "cpu" else size), dtype=dtype, device=device)
    return buf[0, :size], buf[1, :size], buf[2, :size]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _one_pass(losses: torch.Tensor, lam: torch.Tensor, delta: float):
    """Fill grad_buf[i] = SReLU'(l_i - lam) / n chunk by chunk; return it with sum x, sum r, sum grad_buf.

    Per chunk, with x = l - lam, q = x^2 + d^2 and ir = 1/sqrt(q):
    grad = 0.5/n + (0.5/n) x ir, and sum r = sum q * ir (a dot product, no extra buffer).
    """
    n = losses.numel()
    dtype = _compute_dtype(losses.dtype)
    device = losses.device
    lam_c = lam.detach().to(dtype)
    delta_sq = torch.tensor(delta * delta, dtype=dtype, device=device)
    scale = torch.tensor(0.5 / n, dtype=dtype, device=device)
    grad_buf = torch.empty(n, dtype=dtype, device=device)
    size = min(n, CHUNK)
    x_buf, q_buf, ir_buf = _chunk_buffers(size, dtype, device)
    n_chunks = (n + CHUNK - 1) // CHUNK
    sums = torch.empty(n_chunks, 3, dtype=dtype, device=device)
    for c in range(n_chunks):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        m = hi - lo
        x, q, ir, g = x_buf[:m], q_buf[:m], ir_buf[:m], grad_buf[lo:hi]
        torch.sub(losses[lo:hi], lam_c, out=x)
        torch.addcmul(delta_sq, x, x, out=q)
        torch.rsqrt(q, out=ir)
        torch.addcmul(scale, x, ir, value=0.5 / n, out=g)
        torch.sum(x, 0, out=sums[c, 0])
        torch.dot(q, ir, out=sums[c, 1])
        torch.sum(g, 0, out=sums[c, 2])
    sum_x, sum_r, sum_g = sums.sum(0).unbind()
    return grad_buf, sum_x, sum_r, sum_g


def _differentiable_grads(losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float):
    """d/dl_i and d/dlam from autograd-tracked ops, for a backward that builds a graph."""
    n = losses.numel()
    dtype = _compute_dtype(losses.dtype)
    x = losses.to(dtype) - lam.to(dtype)
    grad_losses = 0.5 * (1.0 + x / torch.hypot(x, x.new_tensor(delta))) / n
    return grad_losses, k / n - grad_losses.sum()


class FusedSTkFunction(torch.autograd.Function):
    """forward(losses 1-D, lam 0-dim, k int, delta float) -> scalar ST_k in at least fp32."""

    @staticmethod
    def forward(ctx, losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float):
        n = losses.numel()
        grad_buf, sum_x, sum_r, sum_g = _one_pass(losses, lam, delta)
        lam_c = lam.detach().to(grad_buf.dtype)
        # (1/n) sum SReLU(x_i) = (sum x + sum r - n d) / (2n)
        value = (sum_x + sum_r - n * delta) * (0.5 / n) + (k / n) * lam_c
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
            grad_buf, _, _, sum_g = _one_pass(losses, lam, delta)
            lam_grad = k / n - sum_g
        else:
            lam_grad = ctx.lam_grad
        grad_losses = grad_lam = None
        if ctx.needs_input_grad[0]:
            if torch.is_grad_enabled():
                grad_buf = grad_buf * grad_out
            # Skip the multiply when the incoming gradient is exactly 1 (CPU only: no device sync).
            elif not (grad_out.device.type == "cpu" and float(grad_out) == 1.0):
                grad_buf.mul_(grad_out)
            grad_losses = grad_buf.to(in_dtype)
        if ctx.needs_input_grad[1]:
            grad_lam = (grad_out * lam_grad).to(lam.dtype)
        return grad_losses, grad_lam, None, None


def fused_st_k(losses: torch.Tensor, lam: torch.Tensor, k: int, delta: float) -> torch.Tensor:
    """ST_k with SReLU over a 1-D tensor of valid losses (no argument checks: see st_k)."""
    return FusedSTkFunction.apply(losses.contiguous(), lam, k, delta)
