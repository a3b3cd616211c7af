"""Every hyperparameter has one default, the same through every door a user comes in by: the core's
signatures, build_loss, the fairseq criteria's flags, the vision CLI and (with the hf extra) the
Hugging Face Trainer's stk_* arguments.

Each door's defaults are read from the door itself (signatures, the modules build_loss and the vision
CLI build, fairseq's own argparse from the criteria's configs), then compared across doors.
"""

import argparse
import inspect

import pytest

pytest.importorskip("fairseq")

import stk_nmt  # noqa: E402,F401  (registers the criteria)
from fairseq.dataclass.utils import gen_parser_from_dataclass  # noqa: E402

from stk_nmt.core import aggregates, losses  # noqa: E402
from stk_nmt.core.losses import build_loss  # noqa: E402
from stk_nmt.criterions.aggregated import resolve_k_args  # noqa: E402
from stk_nmt.criterions.topk_hinge import ImbalancedTopKHingeConfig, TopKHingeConfig  # noqa: E402
from stk_nmt.vision import criterion as vision_criterion  # noqa: E402
from stk_nmt.vision import train as vision_train  # noqa: E402

COUNTS = [50, 20, 5, 2]  # training items per class, for the losses that need them


def signature_defaults(function, **names):
    """{our name: default} of `function`'s parameters {our name: its parameter name}, when it has one."""
    parameters = inspect.signature(function).parameters
    return {ours: parameters[theirs].default for ours, theirs in names.items()
            if parameters[theirs].default is not inspect.Parameter.empty}


def module_values(module, **names):
    """{our name: value} of a built loss module's attributes {our name: attribute}."""
    return {ours: getattr(module, attribute) for ours, attribute in names.items()}


HINGE = dict(k="k", epsilon="epsilon", n_samples="n_samples")
IMBALANCED = dict(HINGE, max_m="max_m", scale="scale")


def core_defaults():
    """(loss or aggregate, hyperparameter) -> {signature: default} of the core's functions and modules."""
    by_door = {
        "topk-hinge": {
            "BalancedTopKHinge": signature_defaults(losses.BalancedTopKHinge, epsilon="epsilon", n_samples="n_samples"),
            "balanced_topk_hinge": signature_defaults(losses.balanced_topk_hinge, epsilon="epsilon", n_samples="n_samples"),
            # noised_topk_hinge with margins=None is the balanced loss (its scale 1 is no scaling).
            "noised_topk_hinge": signature_defaults(losses.noised_topk_hinge, epsilon="epsilon", n_samples="n_samples"),
        },
        "topk-hinge-imbalanced": {
            "ImbalancedTopKHinge": signature_defaults(losses.ImbalancedTopKHinge, epsilon="epsilon",
                                                      max_m="max_m", scale="scale", n_samples="n_samples"),
            "imbalanced_topk_hinge": signature_defaults(losses.imbalanced_topk_hinge, epsilon="epsilon",
                                                        scale="scale", n_samples="n_samples"),
        },
        "perturbed-topk": {
            "perturbed_topk": signature_defaults(losses.perturbed_topk, epsilon="epsilon", n_samples="n_samples"),
            "PerturbedTopK": signature_defaults(losses.PerturbedTopK, epsilon="epsilon", n_samples="n_samples"),
        },
        "ldam": {
            "LDAM": signature_defaults(losses.LDAM, max_m="max_m", scale="scale"),
            "ldam_margins": signature_defaults(losses.ldam_margins, max_m="max_m"),
            "ldam_loss": signature_defaults(losses.ldam_loss, scale="scale"),
        },
        "logit-adjusted": {
            "LogitAdjusted": signature_defaults(losses.LogitAdjusted, tau="tau"),
            "logit_adjusted_cross_entropy": signature_defaults(losses.logit_adjusted_cross_entropy, tau="tau"),
        },
        "stk": {
            "build_aggregate": signature_defaults(aggregates.build_aggregate, delta="delta", smoother="smoother",
                                                  lam_init="lam_init"),
            "STk": signature_defaults(aggregates.STk, delta="delta", smoother="smoother", lam_init="lam_init"),
            "st_k": signature_defaults(aggregates.st_k, delta="delta"),
            "lambda_form": signature_defaults(aggregates.lambda_form, delta="delta"),
            "srelu": signature_defaults(aggregates.srelu, delta="delta"),
            "get_smoother": signature_defaults(aggregates.get_smoother, delta="delta"),
            "lam_gradient_sum": signature_defaults(aggregates.lam_gradient_sum, delta="delta", smoother="smoother"),
        },
    }
    return by_door


def build_loss_defaults():
    """The hyperparameters of the modules build_loss(name) builds when given nothing but the counts."""
    return {
        "topk-hinge": {"build_loss": module_values(build_loss("topk-hinge", COUNTS), **HINGE)},
        "topk-hinge-imbalanced": {"build_loss": module_values(build_loss("topk-hinge-imbalanced", COUNTS), **IMBALANCED)},
        "ldam": {"build_loss": module_values(build_loss("ldam", COUNTS), max_m="max_m", scale="scale")},
        "logit-adjusted": {"build_loss": module_values(build_loss("logit-adjusted", COUNTS), tau="tau")},
    }


def fairseq_flag_defaults():
    """The criteria's flags as fairseq's own argparse builds them from the configs, given no flag."""
    def parse(config):
        parser = argparse.ArgumentParser()
        gen_parser_from_dataclass(parser, config())
        return parser.parse_args([])

    def hinge(flags, imbalanced):
        values = {"k": flags.topk_k, "epsilon": flags.topk_eps, "n_samples": flags.topk_samples}
        if imbalanced:
            values.update(max_m=flags.topk_max_m, scale=flags.topk_scale)
        return values

    balanced, imbalanced = parse(TopKHingeConfig), parse(ImbalancedTopKHingeConfig)
    aggregate = {"delta": balanced.stk_delta, "smoother": balanced.stk_smoother, "lam_init": balanced.stk_lam_init}
    return {
        "topk-hinge": {"--criterion topk_hinge": hinge(balanced, False)},
        "topk-hinge-imbalanced": {"--criterion imbalanced_topk_hinge": hinge(imbalanced, True)},
        "stk": {"--criterion topk_hinge": aggregate},
        "stk translation": {"fairseq --stk-k-ratio": {"k_ratio": resolve_k_args(balanced)[1]}},
    }


def vision_cli_defaults(tmp_path):
    """What the vision CLI builds for each loss given only --loss (its per-loss defaults), and its
    aggregate flags; plus LongTailCriterion, the vision door for other training loops."""
    def parse(*argv):
        return vision_train.build_parser().parse_args(["--save-dir", str(tmp_path), *argv])

    def built(name):
        return build_loss(name, COUNTS, **vision_train.loss_options(parse("--loss", name)))

    flags = parse()
    criterion = signature_defaults(vision_criterion.LongTailCriterion, delta="delta", lam_init="lam_init",
                                   k_ratio="k_ratio")
    return {
        "topk-hinge": {"vision --loss topk-hinge": module_values(built("topk-hinge"), **HINGE)},
        "topk-hinge-imbalanced": {"vision --loss topk-hinge-imbalanced":
                                  module_values(built("topk-hinge-imbalanced"), **IMBALANCED)},
        "ldam": {"vision --loss ldam": module_values(built("ldam"), max_m="max_m", scale="scale")},
        "logit-adjusted": {"vision --loss logit-adjusted": module_values(built("logit-adjusted"), tau="tau")},
        "stk": {"vision CLI": {"delta": flags.delta, "lam_init": flags.lam_init},
                "LongTailCriterion": {k: v for k, v in criterion.items() if k != "k_ratio"}},
        "stk vision": {"vision --k-ratio": {"k_ratio": flags.k_ratio},
                       "LongTailCriterion": {"k_ratio": criterion["k_ratio"]}},
    }


def hf_defaults():
    """The Hugging Face door: the stk_* arguments as transformers' own HfArgumentParser builds them
    from STkTrainingArguments given no argument, and the k_ratio STkTokenLoss resolves from them.
    Empty without the hf extra."""
    try:
        from transformers import HfArgumentParser
    except ImportError:
        return {}
    from stk_nmt.hf import STkTrainingArguments
    from stk_nmt.hf.loss import STkTokenLoss

    (args,) = HfArgumentParser(STkTrainingArguments).parse_args_into_dataclasses(["--output_dir", "unused"])
    return {
        "stk": {"Hugging Face stk_* arguments": {"delta": args.stk_delta, "smoother": args.stk_smoother,
                                                 "lam_init": args.stk_lam_init}},
        "stk translation": {"Hugging Face STkTokenLoss": {"k_ratio": STkTokenLoss().k_ratio}},
    }


def merged(*door_tables):
    table = {}
    for doors in door_tables:
        for what, by_door in doors.items():
            table.setdefault(what, {}).update(by_door)
    return table


def test_every_hyperparameter_has_one_default_through_every_door(tmp_path):
    table = merged(core_defaults(), build_loss_defaults(), fairseq_flag_defaults(), vision_cli_defaults(tmp_path),
                   hf_defaults())
    # The balanced hinge is the perturbed operator's hinge: the operator's defaults are its own.
    table["topk-hinge"].update(table.pop("perturbed-topk"))
    disagreements = []
    for what, by_door in table.items():
        names = {name for values in by_door.values() for name in values}
        for name in sorted(names):
            seen = {door: values[name] for door, values in by_door.items() if name in values}
            if len(set(map(repr, seen.values()))) > 1:
                disagreements.append(f"{what} {name}: {seen}")
            # Each hyperparameter has a default in at least two doors: a name the comparison would
            # miss in every door but one means a collector above read the wrong name.
            assert len(seen) >= 2 or what.endswith(("translation", "vision")), (what, name, seen)
    assert not disagreements, "\n".join(disagreements)


def test_k_ratio_defaults_are_each_tasks_paper_setting(tmp_path):
    """k_ratio has no core default (the core takes exactly one of k and k_ratio): each task's doors
    take that task's paper setting (method.md: translation k/n = 0.96, long-tail vision 0.9)."""
    from stk_nmt.core.defaults import K_RATIO

    assert fairseq_flag_defaults()["stk translation"]["fairseq --stk-k-ratio"]["k_ratio"] == K_RATIO["translation"] == 0.96
    for door, values in hf_defaults().get("stk translation", {}).items():
        assert values["k_ratio"] == K_RATIO["translation"], door
    vision = vision_cli_defaults(tmp_path)["stk vision"]
    assert {door: values["k_ratio"] for door, values in vision.items()} == {
        "vision --k-ratio": K_RATIO["vision"], "LongTailCriterion": K_RATIO["vision"]}
    assert K_RATIO["vision"] == 0.9
