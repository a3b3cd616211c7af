"""Runs fairseq-train in one process of a multi-process job and records, on every training forward,
the lam this rank used, so a test can compare ranks. Usage: python fairseq_rank_driver.py OUT.jsonl ARGS..."""

import json
import sys

import stk_nmt  # noqa: F401  (before fairseq on purpose: the criteria are registered when fairseq loads)
from fairseq_cli import train
from stk_nmt.criterions.aggregated import AggregatedCriterion

out_path = sys.argv.pop(1)
original_forward = AggregatedCriterion.forward


def recording_forward(self, model, sample, reduce=True):
    result = original_forward(self, model, sample, reduce)
    if self.training:
        record = {"lam_used": float(result[2]["lam"]), "kth_loss": float(result[2]["kth_loss"])}
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
    return result


AggregatedCriterion.forward = recording_forward
train.cli_main()
