"""The registry's acceptance test: a new aggregate is one file (tests/helpers/toy_aggregate.py, "the
mean of the top half"). Registered, it works through every door without any other file knowing
its name: its plain, masked and batched forms, the fairseq flag --stk-aggregate (in this process,
and in a fairseq-train process through the entry-point group "stk_nmt.aggregates"), the vision
CLI's --aggregate and a batched grid of the experiments.

Independent references: a sort in plain Python for the mean of the top half; fairseq's own
label_smoothed_nll_loss for the token losses; the built-in AT_k at k_ratio 0.5 (k = ceil(n/2), the
same k) for the grid.
"""

import importlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stk_nmt.core import (
    AGGREGATE_LABELS,
    AGGREGATES,
    build_aggregate,
    get_aggregate,
    masked_total,
    rank_masked,
    register_aggregate,
    unregister_aggregate,
)
from stk_nmt.experiments.batched import BatchedAggregate

NAME = "top_half"  # toy_aggregate.NAME; the module is imported by the fixture, not at collection


@pytest.fixture
def toy():
    """The toy registered for one test (and removed after it, so that no other test sees it)."""
    module = importlib.import_module("toy_aggregate")  # its first import registers it
    if NAME not in AGGREGATES:
        register_aggregate(module.TopHalfKind)
    yield get_aggregate(NAME)
    unregister_aggregate(NAME)


def top_half_mean(values):
    """Brute force: the mean of the ceil(n/2) largest of a list of floats."""
    ranked = sorted(values, reverse=True)
    k = math.ceil(len(ranked) / 2)
    return sum(ranked[:k]) / k


def test_the_registry_knows_the_toy_only_once_registered(toy):
    assert NAME in AGGREGATES and AGGREGATES[-1] == NAME and AGGREGATE_LABELS[NAME] == "TopHalf"
    assert tuple(AGGREGATES)[:5] == ("average", "maximum", "atk", "matk", "stk")
    unregister_aggregate(NAME)
    with pytest.raises(ValueError, match=r"aggregate must be one of \('average', 'maximum', 'atk', 'matk', "
                                         r"'stk'\), got aggregate='top_half'"):
        get_aggregate(NAME)
    register_aggregate(type(toy))  # for the fixture's teardown


def test_a_second_class_under_a_taken_name_is_refused():
    from stk_nmt.core import AggregateKind

    class Impostor(AggregateKind):
        name, label = "stk", "ST_k"

    with pytest.raises(ValueError, match="aggregate='stk' is already registered by STkKind"):
        register_aggregate(Impostor)
    assert type(get_aggregate("stk")).__name__ == "STkKind"
    assert AGGREGATES == ("average", "maximum", "atk", "matk", "stk") != ["average", "maximum", "atk", "matk", "stk"]


def test_the_study_takes_it_as_a_system(toy):
    from stk_nmt.translation.study.systems import parse_system

    system = parse_system(NAME)  # it takes no k (toy_aggregate: arguments = ())
    assert system.label == NAME and system.k_ratio is None
    assert system.criterion_args(0.1, []) == ["--criterion", "stk", "--label-smoothing", "0.1", "--stk-aggregate", NAME]
    with pytest.raises(ValueError, match=f"{NAME} takes no k"):
        parse_system(f"{NAME}:0.5")


def test_plain_masked_and_batched_forms_agree_with_a_sort(toy):
    gen = torch.Generator().manual_seed(0)
    losses = torch.rand(4, 7, generator=gen) * 5
    mask = torch.rand(4, 7, generator=gen) > 0.3
    valid = losses[mask].tolist()
    n = len(valid)
    plain = build_aggregate(NAME)(losses, mask)
    assert float(plain) == pytest.approx(top_half_mean(valid), rel=1e-6)
    total = masked_total(NAME, losses, mask, mask.sum(), torch.tensor(math.ceil(n / 2)))
    assert float(total) == pytest.approx(n * float(plain), rel=1e-6)
    # The adapters' masked path: the toy's own k, and its total.
    batch = rank_masked(toy, losses.reshape(-1), mask.reshape(-1), None, 0.96)
    assert int(batch.k) == math.ceil(n / 2) and batch.clipped is None
    assert float(batch.kth) == sorted(valid, reverse=True)[math.ceil(n / 2) - 1]
    assert float(batch.total(losses.reshape(-1), mask.reshape(-1))) == pytest.approx(n * float(plain), rel=1e-6)
    # Batched: one value per row of a (G, B) matrix, each the plain form of its row.
    rows = BatchedAggregate(NAME, 4)(losses)
    for g in range(4):
        assert float(rows[g]) == pytest.approx(top_half_mean(losses[g].tolist()), rel=1e-6)


@pytest.mark.parametrize("door", ["fairseq", "hf"])
def test_an_unknown_aggregate_is_refused_naming_the_door_and_the_known_names(door):
    if door == "fairseq":
        pytest.importorskip("fairseq")
        from stk_nmt.criterions.aggregated import AggregateConfig, check_aggregate_flags

        with pytest.raises(ValueError, match=r"--stk-aggregate must be one of \('average', .*'stk'\), "
                                             r"got --stk-aggregate top_half"):
            check_aggregate_flags(AggregateConfig(stk_aggregate=NAME, sentence_avg=False))
    else:
        pytest.importorskip("transformers")
        from stk_nmt.hf import STkArguments

        with pytest.raises(ValueError, match=r"stk_aggregate must be one of .* got stk_aggregate='top_half'"):
            STkArguments(stk_aggregate=NAME)


def test_trains_through_fairseq_stk_aggregate(toy, tiny_data_bin, tmp_path):
    pytest.importorskip("fairseq")
    from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
    from fairseq_tiny import build_trainer

    trainer, batches = build_trainer(tiny_data_bin, tmp_path, "--criterion", "stk", "--label-smoothing", "0.1",
                                     "--stk-aggregate", NAME, batches=3)
    criterion, pad = trainer.criterion, trainer.task.target_dictionary.pad()
    assert criterion.kind is toy and criterion.lam_module is None
    # The criterion's loss on the first batch: n * the top-half mean of fairseq's own token losses.
    sample = trainer._prepare_sample(batches[0])[0]
    with torch.no_grad():
        out = trainer.model(**sample["net_input"])
        lprobs = trainer.model.get_normalized_probs(out, log_probs=True).view(-1, out[0].size(-1))
        target = sample["target"].view(-1)
        tokens, _ = label_smoothed_nll_loss(lprobs.double(), target, 0.1, ignore_index=pad, reduce=False)
        valid = tokens.view(-1)[target.ne(pad)].tolist()
        loss, _, log = criterion(trainer.model, sample)
    assert float(loss) == pytest.approx(len(valid) * top_half_mean(valid), rel=1e-5)
    assert int(log["agg_k"]) == math.ceil(len(valid) / 2)
    # Three updates: finite losses, and the model moves.
    before = [p.detach().clone() for p in trainer.model.parameters()]
    logs = [trainer.train_step([b]) for b in batches]
    assert trainer.get_num_updates() == 3
    assert all(math.isfinite(float(log["loss"])) for log in logs)
    # fairseq logs loss / ntokens in bits (round=3): the first update's is the value above.
    assert float(logs[0]["loss"]) == pytest.approx(float(loss) / sample["ntokens"] / math.log(2), abs=1e-3)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_fairseq_train_takes_an_aggregate_of_another_package_by_its_entry_point(tiny_data_bin, tmp_path):
    # A package that declares the toy's module in the entry-point group "stk_nmt.aggregates" (here a
    # bare .dist-info on the path): fairseq-train, a process of its own, then knows --stk-aggregate top_half.
    pytest.importorskip("fairseq")
    from fairseq_tiny import TRAIN_COMMON, USER_DIR, env, parse_logs, run

    dist = tmp_path / "site" / "toy_plugin-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[stk_nmt.aggregates]\n{NAME} = toy_aggregate\n")
    helpers = Path(__file__).parent / "helpers"
    path = os.pathsep.join([str(tmp_path / "site"), str(helpers), env()["PYTHONPATH"]])
    proc = run("fairseq_cli.train", tiny_data_bin, "--user-dir", USER_DIR, "--save-dir", tmp_path / "ckpt",
               *TRAIN_COMMON, "--criterion", "stk", "--stk-aggregate", NAME, "--max-update", "3", "--no-save",
               extra_env={"PYTHONPATH": path})
    records = parse_logs(proc.stdout + proc.stderr)
    assert len(records) == 3
    for record in records:  # one batch per update: k = ceil(n / 2) of its n target tokens (wpb)
        assert math.isfinite(record["loss"]) and record["k"] == math.ceil(record["wpb"] / 2), record


def test_trains_through_the_vision_cli(toy, tmp_path):
    from stk_nmt.vision import train
    from stk_nmt.vision.criterion import LongTailCriterion

    metrics = train.main(["--dataset", "sklearn-digits-lt", "--imb-factor", "10", "--model", "mlp", "--batch-size",
                          "32", "--no-progress", "--seed", "3", "--aggregate", NAME, "--epochs", "1",
                          "--save-dir", str(tmp_path), "--no-plot"])
    assert metrics["epochs_done"] == 1 and metrics["lam"] is None
    assert math.isfinite(metrics["history"][0]["train_loss"]) and metrics["history"][0]["train_loss"] > 0
    # The criterion the CLI builds: the top-half mean of the per-sample cross-entropies.
    logits, labels = torch.randn(9, 10, generator=torch.Generator().manual_seed(1)), torch.arange(9)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none").tolist()
    assert float(LongTailCriterion("ce", aggregate=NAME)(logits, labels)) == pytest.approx(top_half_mean(ce), rel=1e-6)


def test_trains_in_a_batched_grid_as_atk_at_half(toy):
    from stk_nmt.experiments.datasets import Split
    from stk_nmt.experiments.tabular import grid, train_grid

    rng = np.random.default_rng(0)

    def part(n):
        X = rng.normal(size=(n, 3)).astype(np.float32)
        return X, np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0).astype(np.float32)

    split = Split(*part(70), *part(30), *part(30))
    configs = grid(NAME, "quick")
    assert len(configs) == 4 and all(c.k is None and c.delta is None for c in configs)
    ours = train_grid(split, "logistic", NAME, configs, "classification", 0, max_epochs=3, progress=False)
    # AT_k with k_ratio 0.5 takes k = ceil(n/2) of every batch (the last one has 6 items): the same
    # aggregate by other code, so the same training up to rounding.
    atk = train_grid(split, "logistic", "atk", [c.__class__(0.5, c.C, c.lr, None) for c in configs],
                     "classification", 0, max_epochs=3, progress=False)
    for a, b in zip(ours, atk):
        assert math.isfinite(a["val_loss"]) and a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
