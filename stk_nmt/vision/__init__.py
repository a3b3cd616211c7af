"""Long-tail image classification with the core losses: datasets, per-sample losses, models, trainer.

Imports the core and torch, never fairseq; torchvision is optional (only for torchvision backbones).

    from stk_nmt.vision import LongTailCriterion
    criterion = LongTailCriterion("ce", aggregate="stk", k_ratio=0.9)
    optimizer = torch.optim.SGD([{"params": model.parameters()}, *criterion.param_groups()], lr=0.1)
    loss = criterion(model(images), labels)
"""

from ..extras import require_extra

require_extra("vision", "stk_nmt.vision")  # before any submodule imports them

from .cifar_lt import CIFARLongTail
from .criterion import LongTailCriterion
from .digits import digits_long_tail
from .losses import LDAM, LOSSES, CrossEntropy, LogitAdjusted, build_loss, cross_entropy, ldam_loss, logit_adjusted_cross_entropy
from .metrics import accuracy_report, evaluate
from .models import build_model, resnet32
from .oltr import SplitFileDataset, oltr_dataset
from .class_profile import long_tail_counts, shot_groups

__all__ = [
    "CIFARLongTail", "CrossEntropy", "LDAM", "LOSSES", "LogitAdjusted", "LongTailCriterion", "SplitFileDataset",
    "accuracy_report", "build_loss", "build_model", "cross_entropy", "digits_long_tail", "evaluate",
    "ldam_loss", "logit_adjusted_cross_entropy", "long_tail_counts", "oltr_dataset", "resnet32", "shot_groups",
]
