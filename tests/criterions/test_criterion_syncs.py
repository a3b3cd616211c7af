"""Host-device read-backs of one training step: stk against label_smoothed_cross_entropy.

On a GPU every tensor-to-Python conversion (bool/int/float/.item()/.tolist() on a tensor, all of
which run aten._local_scalar_dense), every nonzero and every boolean-mask compaction
(masked_select, indexing with a bool tensor) makes the host wait for the device. Counted here on
the CPU with a TorchDispatchMode, through fairseq's own Trainer and task on the tiny transformer.
"""

from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

fairseq = pytest.importorskip("fairseq")
import stk_nmt  # noqa: E402,F401

from fairseq_tiny import build_trainer  # noqa: E402

READ_BACK_OPS = {"_local_scalar_dense", "nonzero", "nonzero_static", "masked_select", "masked_scatter"}


class CountReadBacks(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in READ_BACK_OPS:
            self.counts[name] += 1
        elif name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ()) if i is not None
        ):
            self.counts[f"{name} with a bool mask"] += 1
        return func(*args, **(kwargs or {}))


CRITERIA = {
    "label_smoothed_cross_entropy": ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"],
    "stk": ["--criterion", "stk", "--label-smoothing", "0.1"],
    "stk --stk-k": ["--criterion", "stk", "--label-smoothing", "0.1", "--stk-k", "20"],
    "stk --stk-aggregate atk": ["--criterion", "stk", "--label-smoothing", "0.1", "--stk-aggregate", "atk"],
    "stk --stk-lam-optimizer fairseq": ["--criterion", "stk", "--label-smoothing", "0.1",
                                        "--stk-lam-optimizer", "fairseq"],
    "topk_hinge --topk-hinge-noise dense": ["--criterion", "topk_hinge", "--label-smoothing", "0.1",
                                            "--topk-hinge-noise", "dense"],
}


@pytest.fixture(scope="module")
def counts(tiny_data_bin, tmp_path_factory):
    """Per criterion: read-backs in the criterion's part of a training step (task.train_step =
    forward + backward, then reduce_metrics), and in the whole Trainer.train_step. The second
    update is counted: the first one initialises lam (one read-back, once per run)."""
    result = {}
    for name, flags in CRITERIA.items():
        trainer, batches = build_trainer(tiny_data_bin, tmp_path_factory.mktemp("ckpt"), *flags)
        trainer.train_step([batches[0]])
        sample = trainer._prepare_sample(batches[1])[0]
        trainer.zero_grad()
        with CountReadBacks() as criterion_part:
            _, _, log = trainer.task.train_step(sample, trainer.model, trainer.criterion, trainer.optimizer, 1)
            trainer.criterion.reduce_metrics([log])
        trainer.zero_grad()
        with CountReadBacks() as whole_step:
            trainer.train_step([batches[2]])
        result[name] = (criterion_part.counts, whole_step.counts)
    return result


# The top-K hinge finds the non-padding tokens (one nonzero) to draw noise for them alone; its
# accuracy counts stay tensors until a log line is printed.
EXTRA = {"topk_hinge --topk-hinge-noise dense": Counter({"nonzero": 1})}


@pytest.mark.parametrize("name", [n for n in CRITERIA if n != "label_smoothed_cross_entropy"])
def test_the_criterion_adds_no_read_back_to_a_training_step(counts, name):
    ours, theirs = counts[name][0], counts["label_smoothed_cross_entropy"][0]
    assert ours == theirs + EXTRA.get(name, Counter()), (ours, theirs)


@pytest.mark.parametrize("name", [n for n in CRITERIA if n != "label_smoothed_cross_entropy"])
def test_whole_trainer_step_has_as_many_read_backs_as_label_smoothed_cross_entropy(counts, name):
    # fairseq itself reads back (the model's padding checks, the gradient norm, each rounded
    # meter): the same count for both criteria; stk's extra meters (k, kth_loss, lam, k_clipped)
    # are unrounded tensors, read only when a log line is printed.
    ours, theirs = counts[name][1], counts["label_smoothed_cross_entropy"][1]
    assert ours == theirs + EXTRA.get(name, Counter()), (ours, theirs)
    assert sum(theirs.values()) > 0  # the counter sees fairseq's own read-backs
