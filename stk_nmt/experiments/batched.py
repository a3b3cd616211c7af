"""A grid of G independent small models trained in one batched pass.

The paper's tabular protocol selects k, C, lr and delta on a validation split: up to 1,320
configurations per dataset and repeat. Trained one by one with batch 16, Python overhead dominates;
stacking the G models along a leading dimension makes every step one batched matmul instead.
The MLP's backward is written out where torch's generic one spent its time on copies, mixed
memory layouts and one-column matrix products; every number stays autograd's bit for bit (tested),
so cells trained before and after retrain identically.

Every model has its own (k, delta, lam): BatchedAggregate holds them and evaluates the registry
aggregate's batched form (its class's `batched`, stk_nmt.core.aggregates.kinds) over the rows of a
(G, B) loss matrix, so any registered aggregate trains in a grid.
tests/experiments/test_examples_batched.py checks every row against the core's functional aggregates (values
and gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from stk_nmt.core import get_aggregate
from stk_nmt.core.aggregates.batched import KSpec, batched_kth_largest, resolve_k_rows


@dataclass(frozen=True)
class Config:
    """One point of the validation grid."""

    k: Optional[KSpec]  # None for average / maximum
    C: float  # L2 regulariser ||w||^2 / (2 C)
    lr: float
    delta: Optional[float]  # ST_k only

    def as_dict(self) -> dict:
        return {"k": self.k, "C": self.C, "lr": self.lr, "delta": self.delta}


class BatchedAggregate(nn.Module):
    """G aggregates of one kind over the rows of a (G, B) loss matrix; forward returns (G,) values.

    name: a registered aggregate (core.AGGREGATES). k_specs: one k per row (count or ratio) for the
    aggregates that use k (atk/matk/stk). deltas: one delta per row for those that use delta (stk).
    lam (G,), for those that hold one, is initialised on the first call to each row's k-th largest
    loss by the aggregate's initial_lam, the rule of the core's STk module with lam_init=None (a row
    set by hand before is kept).
    """

    def __init__(self, name: str, G: int, k_specs: Optional[Sequence[KSpec]] = None,
                 deltas: Optional[Sequence[float]] = None):
        super().__init__()
        kind = get_aggregate(name)
        if G < 1:
            raise ValueError(f"G must be >= 1, got G={G}")
        self.name, self.G, self.kind = name, G, kind
        if kind.uses_k:
            if k_specs is None or len(k_specs) != G:
                raise ValueError(f"k_specs must give one k per model (G={G}), got {k_specs!r}")
            self.k_specs = list(k_specs)
        if kind.uses_delta:
            if deltas is None or len(deltas) != G:
                raise ValueError(f"deltas must give one delta per model (G={G}), got {deltas!r}")
            # float64 so that each delta reaches the losses' dtype rounded once, as a Python float would.
            self.deltas = torch.tensor(list(deltas), dtype=torch.float64)
        if kind.holds_lam:
            self.lam = nn.Parameter(torch.zeros(G))
            self.lam_initialized = False
        self._k_cache: Dict[int, torch.Tensor] = {}

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the models `rows` (a 1-D index tensor), in that order."""
        self.G = int(rows.numel())
        if hasattr(self, "k_specs"):
            self.k_specs = [self.k_specs[i] for i in rows.tolist()]
        if hasattr(self, "deltas"):
            self.deltas = self.deltas[rows]
        if hasattr(self, "lam"):
            self.lam = nn.Parameter(self.lam.detach()[rows])
        self._k_cache = {}

    def ks(self, n: int) -> torch.Tensor:
        """Each row's k for a batch of n items, by the core's rule."""
        if n not in self._k_cache:
            self._k_cache[n] = resolve_k_rows(n, self.k_specs)
        return self._k_cache[n]

    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        if losses.dim() != 2 or losses.shape[0] != self.G:
            raise ValueError(f"losses must have shape (G={self.G}, B), got {tuple(losses.shape)}")
        kind = self.kind
        k = self.ks(losses.shape[1]) if kind.uses_k else None
        if not kind.holds_lam:
            return kind.batched(losses, k)
        if not self.lam_initialized:
            # The core's rule (lam_init.py): rows set by hand are kept. No collective: a grid is one process.
            value, _ = kind.initial_lam(self.lam, batched_kth_largest(losses, k), over_processes=False)
            with torch.no_grad():
                self.lam.copy_(value)
            self.lam_initialized = True
        return kind.batched(losses, k, self.lam, self.deltas if kind.uses_delta else None)


class _SquaredNorms(torch.autograd.Function):
    """Per model ||w||^2 over a weight tensor whose model axis is `dim`; its backward is
    (2 grad_g) * w, one pass. Autograd's pow backward takes three passes (w^1, 2 w^1, grad * 2 w)
    and the same value: doubling is exact, so (2 c) w and c (2 w) round alike."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.save_for_backward(w)
        ctx.dim = dim
        return w.pow(2).sum([d for d in range(w.dim()) if d != dim])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (w,) = ctx.saved_tensors
        shape = [1] * w.dim()
        shape[ctx.dim] = -1
        return w * (2 * grad).view(shape), None


class _ReluBackwardInItsLayout(torch.autograd.Function):
    """torch.relu whose backward first copies the incoming gradient into the output's memory layout.

    The hidden activations are (G, B, hidden) views of (B, G, hidden) memory (the layout of the
    first layer's one matrix product), the gradient from the second layer's bmm is contiguous
    (G, B, hidden), and torch's threshold_backward over two layouts ran 12x slower than over one
    (1.6 ms against 0.13 ms at G = 1,320, B = 16). The result is the same tensor, values and strides:
    threshold_backward only selects, and its output takes the activations' layout either way."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor) -> torch.Tensor:
        h = torch.relu(pre)
        ctx.save_for_backward(h)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (h,) = ctx.saved_tensors
        if grad.stride() != h.stride():
            grad = torch.empty_like(h).copy_(grad)  # empty_like keeps h's strides
        return torch.ops.aten.threshold_backward(grad, h, 0)


class _OutputLayer(torch.autograd.Function):
    """bmm(h, w2) for h (G, B, hidden), w2 (G, hidden, 1), with the gradients autograd's bmm gives.

    The gradient of h is an outer product per model (an inner dimension of 1: each entry one exact
    product), computed as a broadcast multiply, 7x faster than 1,320 one-column matrix products,
    straight into h's memory layout (which the ReLU backward then reads without a copy)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, w2)
        return torch.bmm(h, w2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, w2 = ctx.saved_tensors
        grad_h = torch.mul(grad, w2.transpose(1, 2), out=torch.empty_like(h))  # empty_like keeps h's strides
        return grad_h, h.transpose(1, 2).bmm(grad)


class BatchedMLP(nn.Module):
    """G independent 2-layer MLPs d -> hidden (ReLU) -> 1, evaluated on one shared input batch.

    The first layer's weights are stored as w1_dgh (d, G, hidden), the layout of the one matrix
    product x @ W (B, d) x (d, G * hidden) that evaluates all G models: (G, d, hidden) storage made
    every step copy the weights into it and the gradient back out of it. `w1` is the (G, d, hidden)
    view.
    """

    def __init__(self, G: int, d: int, hidden: int = 10, generator: Optional[torch.Generator] = None):
        super().__init__()
        if G < 1 or d < 1 or hidden < 1:
            raise ValueError(f"G, d and hidden must be >= 1, got G={G}, d={d}, hidden={hidden}")

        def uniform(shape, fan_in):  # nn.Linear's default initialisation, per model
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=generator) * 2 - 1) * bound

        self.w1_dgh = _model_param(uniform((G, d, hidden), d).transpose(0, 1).contiguous(), model_dim=1)
        self.b1 = _model_param(uniform((G, 1, hidden), d))
        self.w2 = _model_param(uniform((G, hidden, 1), hidden))
        self.b2 = _model_param(uniform((G, 1, 1), hidden))

    @property
    def w1(self) -> torch.Tensor:
        return self.w1_dgh.transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, d) -> scores (G, B)."""
        d, G, hidden = self.w1_dgh.shape
        pre = (x @ self.w1_dgh.view(d, G * hidden)).view(x.shape[0], G, hidden).transpose(0, 1)
        if not torch.is_grad_enabled():  # evaluation: the same operations, in place (no new (G, B, hidden) tensors)
            h = pre.add_(self.b1).relu_()
            return torch.bmm(h, self.w2).add_(self.b2).squeeze(-1)
        h = _ReluBackwardInItsLayout.apply(pre + self.b1)
        return (_OutputLayer.apply(h, self.w2) + self.b2).squeeze(-1)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the models `rows` (a 1-D index tensor), in that order (each model's numbers
        do not depend on the others', so the kept models train on bit for bit)."""
        for name in ("w1_dgh", "b1", "w2", "b2"):
            old = getattr(self, name)
            setattr(self, name, _model_param(old.detach().index_select(old.model_dim, rows), old.model_dim))

    def weight_sq_norm(self) -> torch.Tensor:
        """||w||^2 per model (weights only, as usual for L2 regularisation)."""
        return _SquaredNorms.apply(self.w1_dgh, 1) + _SquaredNorms.apply(self.w2, 0)


def _model_param(data: torch.Tensor, model_dim: int = 0) -> nn.Parameter:
    """A parameter holding G models' values along model_dim (read by BatchedAdagrad)."""
    p = nn.Parameter(data)
    p.model_dim = model_dim
    return p


class BatchedAdagrad:
    """AdaGrad with one learning rate per model.

    torch.optim.Adagrad takes one lr per parameter group; the G models share each parameter tensor,
    so the per-model rate is applied here (the same update rule: p -= lr * g / (sqrt(sum g^2) + eps)),
    along each parameter's model axis (its `model_dim` attribute, 0 when absent).

    The step works in two preallocated buffers per parameter, with the operations of the expression
    above in its order (the same numbers bit for bit, tested): a full grid's parameters are megabytes,
    and the expression's four fresh temporaries a step made its allocations and page faults cost
    more than its arithmetic (the step ran 2.2x slower at G = 1,320, d = 57).
    """

    def __init__(self, params: List[nn.Parameter], lrs: torch.Tensor, eps: float = 1e-10):
        self.params, self.lrs, self.eps = list(params), lrs, eps
        self.state = [torch.zeros_like(p) for p in self.params]
        self._make_buffers()

    def _make_buffers(self) -> None:
        self._steps = [torch.empty_like(p) for p in self.params]  # lr * g, then / denominator
        self._denominators = [torch.empty_like(p) for p in self.params]  # sqrt(sum g^2) + eps
        self._lr_views = [self.lrs.view([-1 if d == getattr(p, "model_dim", 0) else 1 for d in range(p.dim())])
                          for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, s, update, denominator, lr in zip(self.params, self.state, self._steps, self._denominators,
                                                 self._lr_views):
            if p.grad is None:
                continue
            s.addcmul_(p.grad, p.grad)
            torch.mul(lr, p.grad, out=update)
            torch.sqrt(s, out=denominator).add_(self.eps)
            p.sub_(update.div_(denominator))

    def keep(self, rows: torch.Tensor, params: List[nn.Parameter]) -> None:
        """Keep only the models `rows` of every state tensor and learning rate; `params` are the
        parameters that replace the old ones, in the same order (already reduced to `rows`)."""
        self.state = [s.index_select(getattr(p, "model_dim", 0), rows) for s, p in zip(self.state, params)]
        self.params, self.lrs = list(params), self.lrs[rows]
        self._make_buffers()

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
