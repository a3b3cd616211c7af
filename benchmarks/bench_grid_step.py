"""One training step of the tabular grid (examples/binary_classification.py --mode full), side by side:
the grid's BatchedMLP + BatchedAdagrad against the same step written with torch's generic autograd
ops and an allocating AdaGrad expression (the formulation of the first archived full-grid cells).

    python benchmarks/bench_grid_step.py                  # spambase-like and phoneme-like ST_k grids
    python benchmarks/bench_grid_step.py --shapes 1320,57 --repeats 200 --json out.json

A step is forward (batch 16), ST_k of the logistic losses, the L2 term, backward and the AdaGrad
update of all G models. The two run alternately, step by step (median over --repeats), so a busy
machine slows both alike. Both start from the same parameters and are checked to end every step
with the same parameters bit for bit ("identical"): the speed-up changes no number.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from stk_nmt.experiments.batched import BatchedAdagrad, BatchedAggregate, BatchedMLP
from stk_nmt.experiments.tabular import grid
from stk_nmt.files import write_json

# (G, d): the full ST_k grid (1,320 configurations) on spambase (57 features) and phoneme (5).
DEFAULT_SHAPES = ["1320,57", "1320,5"]
BATCH = 16


def parse_shape(text: str):
    try:
        G, d = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--shapes entries must be G,d integers, got {text!r}") from None
    if G < 1 or G > len(grid("stk", "full")) or d < 1:
        raise ValueError(f"--shapes entry needs 1 <= G <= {len(grid('stk', 'full'))} and d >= 1, got {text!r}")
    return G, d


class AutogradStep:
    """The step as torch's generic ops write it: einsum over (G, d, hidden) weights, relu, bmm, pow,
    and p -= lr * g / (sqrt(s) + eps) with fresh temporaries."""

    def __init__(self, model: BatchedMLP, aggregate: BatchedAggregate, lrs, inv_2C):
        self.params = [p.detach().clone().requires_grad_(True) for p in (model.w1, model.b1, model.w2, model.b2)]
        self.aggregate, self.lrs, self.inv_2C = aggregate, lrs, inv_2C
        self.state = [torch.zeros_like(p) for p in self.all_params()]

    def all_params(self):
        return self.params + list(self.aggregate.parameters())

    def __call__(self, x, y):
        w1, b1, w2, b2 = self.params
        h = torch.relu(torch.einsum("bd,gdh->gbh", x, w1) + b1)
        scores = (torch.bmm(h, w2) + b2).squeeze(-1)
        norms = w1.pow(2).sum((1, 2)) + w2.pow(2).sum((1, 2))
        objective = (self.aggregate(F.softplus(-y * scores)) + self.inv_2C * norms).sum()
        for p in self.all_params():
            p.grad = None
        objective.backward()
        with torch.no_grad():
            for p, s in zip(self.all_params(), self.state):
                s.addcmul_(p.grad, p.grad)
                p.sub_(self.lrs.view(-1, *([1] * (p.dim() - 1))) * p.grad / (s.sqrt() + 1e-10))


class GridStep:
    """The step as stk_nmt.experiments.tabular.train_grid runs it."""

    def __init__(self, model: BatchedMLP, aggregate: BatchedAggregate, lrs, inv_2C):
        self.model, self.aggregate, self.inv_2C = model, aggregate, inv_2C
        self.optimizer = BatchedAdagrad(list(model.parameters()) + list(aggregate.parameters()), lrs)

    def __call__(self, x, y):
        scores = self.model(x)
        objective = (self.aggregate(F.softplus(-y * scores)) + self.inv_2C * self.model.weight_sq_norm()).sum()
        self.optimizer.zero_grad()
        objective.backward()
        self.optimizer.step()

    def params(self):
        return [self.model.w1, self.model.b1, self.model.w2, self.model.b2, *self.aggregate.parameters()]


def measure(G: int, d: int, repeats: int, seed: int = 0) -> dict:
    configs = grid("stk", "full")[:G]
    g = torch.Generator().manual_seed(seed)
    model = BatchedMLP(G, d, generator=g)

    def aggregate():
        return BatchedAggregate("stk", G, k_specs=[c.k for c in configs], deltas=[c.delta for c in configs])

    lrs = torch.tensor([c.lr for c in configs])
    inv_2C = torch.tensor([1.0 / (2 * c.C) for c in configs])
    steps = {"autograd": AutogradStep(model, aggregate(), lrs, inv_2C), "grid": GridStep(model, aggregate(), lrs, inv_2C)}
    batches = [(torch.randn(BATCH, d, generator=g), torch.randint(0, 2, (BATCH,), generator=g).float() * 2 - 1)
               for _ in range(8)]
    times = {name: [] for name in steps}
    identical = True
    for i in range(repeats + 1):
        x, y = batches[i % len(batches)]
        for name, step in steps.items():
            t0 = time.perf_counter()
            step(x, y)
            times[name].append(time.perf_counter() - t0)
        ours = steps["grid"].params()
        identical &= all(torch.equal(a, b) for a, b in zip(ours, steps["autograd"].all_params()))
    median = {name: statistics.median(ts[1:]) for name, ts in times.items()}  # the first step initialises lam
    return {"G": G, "d": d, "ms_per_step": {k: 1e3 * v for k, v in median.items()},
            "speedup": median["autograd"] / median["grid"], "identical": identical}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="G,d entries (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=100, help="timed steps per implementation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the grid runs one per process)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:
        shapes = [parse_shape(s) for s in args.shapes]
    except ValueError as e:
        parser.error(str(e))
    torch.set_num_threads(args.threads)
    results = []
    print(f"{'G':>6} {'d':>4} {'autograd ms':>12} {'grid ms':>9} {'speed-up':>9}  identical")
    for G, d in shapes:
        r = measure(G, d, args.repeats)
        results.append(r)
        ms = r["ms_per_step"]
        print(f"{G:>6} {d:>4} {ms['autograd']:>12.2f} {ms['grid']:>9.2f} {r['speedup']:>8.2f}x  "
              f"{'yes' if r['identical'] else 'NO'}")
    out = {"repeats": args.repeats, "threads": args.threads, "results": results}
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
