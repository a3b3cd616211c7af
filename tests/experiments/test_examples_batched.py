"""The batched grid trainer against the core and torch.optim: same values, same gradients, same updates."""

import math

import pytest
import torch

from stk_nmt.core import average, average_top_k, mat_k, maximum, st_k
from stk_nmt.experiments import batched
from stk_nmt.experiments.batched import BatchedAdagrad, BatchedAggregate, BatchedMLP
from stk_nmt.experiments.tabular import grid

K_SPECS = [1, 0.1, 0.5, 0.9, 1.0, 3]
DELTAS = [0.1, 0.01, 0.001, 0.0001, 0.01, 0.1]


def _losses(G=6, B=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(G, B, generator=g, dtype=torch.float64) * 3).requires_grad_(True)


def _k(spec, n):
    return spec if isinstance(spec, int) else min(max(math.ceil(round(spec * n, 9)), 1), n)


@pytest.mark.parametrize("name", ["average", "maximum", "atk", "matk", "stk"])
def test_every_row_matches_the_core(name):
    losses = _losses()
    G, n = losses.shape
    agg = BatchedAggregate(name, G, k_specs=K_SPECS, deltas=DELTAS).double()
    values = agg(losses)
    values.sum().backward()
    for g in range(G):
        row = losses.detach()[g].clone().requires_grad_(True)
        k = _k(K_SPECS[g], n)
        if name in ("matk", "stk"):
            # lam starts at the row's k-th largest loss (brute force: sort)
            assert agg.lam[g].item() == pytest.approx(sorted(row.tolist(), reverse=True)[k - 1])
            lam = agg.lam.detach()[g].clone().requires_grad_(True)
        ref = {"average": lambda: average(row), "maximum": lambda: maximum(row),
               "atk": lambda: average_top_k(row, k),
               "matk": lambda: mat_k(row, lam, k),
               "stk": lambda: st_k(row, lam, k, delta=DELTAS[g])}[name]()
        ref.backward()
        assert values[g].item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
        torch.testing.assert_close(losses.grad[g], row.grad, rtol=1e-7, atol=1e-12)
        if name in ("matk", "stk"):
            assert agg.lam.grad[g].item() == pytest.approx(lam.grad.item(), rel=1e-7, abs=1e-12)


def test_batched_mlp_equals_one_model_at_a_time():
    g = torch.Generator().manual_seed(1)
    model = BatchedMLP(3, 5, hidden=4, generator=g)
    x = torch.randn(7, 5, generator=g)
    out = model(x)
    for i in range(3):
        h = torch.relu(x @ model.w1[i] + model.b1[i])
        torch.testing.assert_close(out[i], (h @ model.w2[i] + model.b2[i]).squeeze(-1))
        assert model.weight_sq_norm()[i].item() == pytest.approx(
            (model.w1[i] ** 2).sum().item() + (model.w2[i] ** 2).sum().item(), rel=1e-6)


def _reference_objective(w1, b1, w2, b2, x, inv_2C):
    """The grid's training objective written with torch's own autograd ops, in the formulation the
    archived full-grid cells were trained with (einsum over (G, d, hidden) weights, relu, bmm, pow)."""
    h = torch.relu(torch.einsum("bd,gdh->gbh", x, w1) + b1)
    scores = (torch.bmm(h, w2) + b2).squeeze(-1)
    norms = w1.pow(2).sum((1, 2)) + w2.pow(2).sum((1, 2))
    return (torch.nn.functional.softplus(-scores).mean(1) + inv_2C * norms).sum(), scores


@pytest.mark.parametrize("G,d,B", [(7, 5, 16), (40, 57, 16), (3, 2, 1)])
def test_batched_mlp_gradients_are_autograds_bit_for_bit(G, d, B):
    """The MLP's own backward (weights stored (d, G, hidden), the ReLU and output-layer functions,
    the one-pass norm gradient) gives torch autograd's gradients exactly, and evaluation under
    no_grad (in place) gives the same scores: archived grid cells must retrain identically."""
    g = torch.Generator().manual_seed(G + d)
    model = BatchedMLP(G, d, hidden=10, generator=g)
    x = torch.randn(B, d, generator=g)
    inv_2C = 1.0 / (2 * 10.0 ** torch.randint(0, 6, (G,), generator=g).float())
    ref_params = [p.detach().clone().requires_grad_(True) for p in (model.w1, model.b1, model.w2, model.b2)]
    ref_objective, ref_scores = _reference_objective(*ref_params, x, inv_2C)
    ref_objective.backward()

    scores = model(x)
    (torch.nn.functional.softplus(-scores).mean(1) + inv_2C * model.weight_sq_norm()).sum().backward()
    assert torch.equal(scores, ref_scores)
    grads = (model.w1_dgh.grad.transpose(0, 1), model.b1.grad, model.w2.grad, model.b2.grad)
    for ours, ref in zip(grads, ref_params):
        assert torch.equal(ours, ref.grad)
    with torch.no_grad():
        assert torch.equal(model(x), ref_scores)


def test_a_dead_relu_passes_no_gradient_and_a_nan_passes_it_as_torch_does():
    pre = torch.tensor([[[-1.0, 0.0, 2.0, float("nan")]]], requires_grad=True)
    batched._ReluBackwardInItsLayout.apply(pre).backward(torch.full((1, 1, 4), 3.0))
    ref = pre.detach().clone().requires_grad_(True)
    torch.relu(ref).backward(torch.full((1, 1, 4), 3.0))
    assert torch.equal(pre.grad, ref.grad) and pre.grad.tolist() == [[[0.0, 0.0, 3.0, 3.0]]]


def test_batched_adagrad_matches_torch_adagrad_per_model():
    lrs = torch.tensor([0.1, 0.01, 0.5])
    w = torch.nn.Parameter(torch.randn(3, 4, generator=torch.Generator().manual_seed(2)))
    refs = [torch.nn.Parameter(w.detach()[i].clone()) for i in range(3)]
    ours = BatchedAdagrad([w], lrs)
    theirs = [torch.optim.Adagrad([p], lr=float(lr), eps=1e-10) for p, lr in zip(refs, lrs)]
    for step in range(4):
        target = torch.randn(3, 4, generator=torch.Generator().manual_seed(10 + step))
        ours.zero_grad()
        ((w - target) ** 2).sum().backward()
        ours.step()
        for i, (p, opt) in enumerate(zip(refs, theirs)):
            opt.zero_grad()
            ((p - target[i]) ** 2).sum().backward()
            opt.step()
    for i in range(3):
        torch.testing.assert_close(w.detach()[i], refs[i].detach())


def test_the_paper_grid_has_every_combination():
    # k in {1} U {0.1..1.0} (11), C in 1e0..1e5 (6), lr (5), delta (4)
    assert len(grid("stk", "full")) == 11 * 6 * 5 * 4
    assert len(grid("atk", "full")) == len(grid("matk", "full")) == 11 * 6 * 5
    assert len(grid("average", "full")) == len(grid("maximum", "full")) == 6 * 5
    assert {c.k for c in grid("stk", "full")} == {1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="aggregate"):
        BatchedAggregate("median", 2)
    with pytest.raises(ValueError, match="k_specs"):
        BatchedAggregate("stk", 2, k_specs=[0.5], deltas=[0.01, 0.01])
    with pytest.raises(ValueError, match="method"):
        grid("median", "full")
    with pytest.raises(ValueError, match="mode"):
        grid("stk", "huge")


def test_flushing_subnormals_changes_no_result_of_a_grid_that_has_them(monkeypatch):
    # wisconsin's full MAT_k grid makes thousands of subnormal gradient entries in 3 epochs; flushing
    # them to zero (train_grid's default, for speed) must give the same numbers.
    from stk_nmt.experiments import tabular
    from stk_nmt.experiments.datasets import load_keel, split_standardize

    split = split_standardize(load_keel("wisconsin"), 0)
    subnormal = []
    step = tabular.BatchedAdagrad.step

    def counting_step(self):
        tiny = torch.finfo(torch.float32).tiny
        subnormal.append(sum(int(((p.grad != 0) & (p.grad.abs() < tiny)).sum()) for p in self.params))
        step(self)

    monkeypatch.setattr(tabular.BatchedAdagrad, "step", counting_step)
    runs = {flush: tabular.train_grid(split, "logistic", "matk", grid("matk", "full"), "classification", 0,
                                      max_epochs=3, progress=False, flush_denormal=flush) for flush in (False, True)}
    assert sum(subnormal[: len(subnormal) // 2]) > 1000  # the unflushed run met subnormals
    assert sum(subnormal[len(subnormal) // 2:]) == 0  # the flushed one saw them as zeros
    assert runs[True] == runs[False]


def test_flushed_denormals_restores_them():
    from stk_nmt.experiments.tabular import flushed_denormals

    subnormal = torch.tensor([1e-39])
    with flushed_denormals():
        assert float(subnormal * 1.0) == 0.0
    assert float(subnormal * 1.0) == pytest.approx(1e-39, rel=1e-3)
    with flushed_denormals(enabled=False):
        assert float(subnormal * 1.0) != 0.0


def test_dropping_stopped_models_changes_no_result(monkeypatch):
    # Patience 3 over 15 epochs: most of wisconsin's MAT_k grid stops on the way and is dropped;
    # every model's numbers must be those of the run that keeps computing (frozen) stopped models.
    from stk_nmt.experiments import tabular
    from stk_nmt.experiments.datasets import load_keel, split_standardize

    split = split_standardize(load_keel("wisconsin"), 1)
    sizes = []
    keep = tabular.BatchedMLP.keep

    def counting_keep(self, rows):
        sizes.append(int(rows.numel()))
        keep(self, rows)

    monkeypatch.setattr(tabular.BatchedMLP, "keep", counting_keep)
    runs = {drop: tabular.train_grid(split, "logistic", "matk", grid("matk", "full"), "classification", 1,
                                     max_epochs=15, patience=3, progress=False, drop_stopped=drop)
            for drop in (False, True)}
    assert len(sizes) >= 2 and sizes[-1] < len(grid("matk", "full")) // 2  # models were dropped, in steps
    assert sum(r["stopped_early"] for r in runs[True]) > len(runs[True]) // 2
    assert runs[True] == runs[False]


def test_keep_selects_the_models_of_every_part():
    from stk_nmt.experiments.stopping import EarlyStopping

    g = torch.Generator().manual_seed(0)
    model = BatchedMLP(5, 3, hidden=2, generator=g)
    aggregate = BatchedAggregate("stk", 5, k_specs=[1, 0.5, 2, 0.9, 3], deltas=[0.1, 0.2, 0.3, 0.4, 0.5])
    aggregate(torch.rand(5, 8, generator=g))  # initialises lam
    optimizer = BatchedAdagrad(list(model.parameters()) + list(aggregate.parameters()), torch.arange(5.0))
    stopping = EarlyStopping(5, patience=2)
    stopping.update(torch.arange(5.0))
    x = torch.randn(4, 3, generator=g)
    rows = torch.tensor([4, 1])
    before = (model(x)[rows], aggregate.lam.detach()[rows].clone(), aggregate.deltas[rows].clone())
    model.keep(rows)
    aggregate.keep(rows)
    optimizer.keep(rows, list(model.parameters()) + list(aggregate.parameters()))
    stopping.keep(rows)
    assert torch.equal(model(x), before[0])
    assert torch.equal(aggregate.lam.detach(), before[1]) and torch.equal(aggregate.deltas, before[2])
    assert aggregate.k_specs == [3, 0.5] and aggregate.G == 2
    assert torch.equal(optimizer.lrs, torch.tensor([4.0, 1.0])) and len(optimizer.state) == len(optimizer.params)
    assert all(s.shape == p.shape for s, p in zip(optimizer.state, optimizer.params))
    assert torch.equal(stopping.best, torch.tensor([4.0, 1.0], dtype=torch.float64))


def test_batched_adagrad_steps_are_the_update_formula_bit_for_bit():
    """The buffered step computes p - lr * g / (sqrt(sum g^2) + eps) in that order, before and after
    models are dropped (the archived grid cells depend on these exact numbers)."""
    g = torch.Generator().manual_seed(3)
    lrs = torch.tensor([0.1, 0.05, 0.01, 0.005])
    params = [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((4, 5, 3), (4, 1, 3), (4,))]
    reference = [p.detach().clone() for p in params]
    sums = [torch.zeros_like(p) for p in reference]
    optimizer = BatchedAdagrad(params, lrs)
    ref_lrs = lrs
    for step in range(6):
        if step == 3:  # drop models 1 and 2, as train_grid does
            rows = torch.tensor([0, 3])
            params = [torch.nn.Parameter(p.detach()[rows]) for p in params]
            optimizer.keep(rows, params)
            reference, sums, ref_lrs = [r[rows] for r in reference], [s[rows] for s in sums], ref_lrs[rows]
        grads = [torch.randn(p.shape, generator=g) * 10.0 ** (step - 3) for p in params]
        for p, grad in zip(params, grads):
            p.grad = grad.clone()
        optimizer.step()
        for i, grad in enumerate(grads):
            sums[i] = sums[i].addcmul(grad, grad)  # as the unbuffered step did (fused on some CPUs)
            lr = ref_lrs.view(-1, *([1] * (grad.dim() - 1)))
            reference[i] = reference[i] - lr * grad / (sums[i].sqrt() + 1e-10)
        for p, r, grad in zip(params, reference, grads):
            assert torch.equal(p.detach(), r)
            assert torch.equal(p.grad, grad)  # the gradient is read, not consumed
