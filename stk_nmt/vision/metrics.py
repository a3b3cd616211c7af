"""Evaluation: overall, many/medium/few-shot top-1 and top-5, and per-class accuracy."""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence

import torch

from .class_profile import FEW_SHOT_BELOW, MANY_SHOT_ABOVE, shot_groups

TOP_K = (1, 5)


def hits_at_k(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = TOP_K) -> Dict[int, torch.Tensor]:
    """For each k <= classes: a bool tensor, True where the label is among the k highest logits."""
    out = {}
    for k in ks:
        if k <= logits.shape[1]:
            top = logits.topk(k, dim=1).indices
            out[k] = (top == labels[:, None]).any(dim=1)
    return out


def accuracy_report(
    hits: Dict[int, torch.Tensor], labels: torch.Tensor, train_counts: Sequence[int]
) -> dict:
    """Accuracies (in %) from per-sample hits: overall, per shot group (classes grouped by training
    count) and per class. A group without classes, or a top-k with k > classes, is reported as None.
    Group accuracy averages the group's test samples (the test sets are balanced, so this equals
    the mean of its per-class accuracies there)."""
    num_classes = len(train_counts)
    labels = labels.cpu()
    per_class_n = torch.bincount(labels, minlength=num_classes).double()
    report: dict = {"num_test": int(labels.numel()), "train_counts": list(map(int, train_counts))}
    groups = shot_groups(train_counts)
    report["shot_classes"] = {name: len(cls) for name, cls in groups.items()}
    report["shot_thresholds"] = {"many": f"> {MANY_SHOT_ABOVE}", "medium": f"{FEW_SHOT_BELOW}..{MANY_SHOT_ABOVE}", "few": f"< {FEW_SHOT_BELOW}"}
    for k in TOP_K:
        if k not in hits:
            report[f"top{k}"] = None
            report.update({f"{g}_top{k}": None for g in groups})
            continue
        h = hits[k].cpu().double()
        report[f"top{k}"] = 100.0 * float(h.mean())
        correct = torch.bincount(labels, weights=h, minlength=num_classes)
        for name, cls in groups.items():
            n = float(per_class_n[cls].sum()) if cls else 0.0
            report[f"{name}_top{k}"] = 100.0 * float(correct[cls].sum()) / n if n else None
        if k == 1:
            report["per_class_top1"] = [
                100.0 * float(c / n) if n else None for c, n in zip(correct.tolist(), per_class_n.tolist())
            ]
    return report


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable, train_counts: Sequence[int], device: Optional[torch.device] = None) -> dict:
    """Run `model` over `loader` ((images, labels) batches) in eval mode and report accuracies."""
    was_training = model.training
    model.eval()
    all_hits: Dict[int, list] = {}
    all_labels = []
    for images, labels in loader:
        if device is not None:
            images, labels = images.to(device), labels.to(device)
        for k, h in hits_at_k(model(images).float(), labels).items():
            all_hits.setdefault(k, []).append(h.cpu())
        all_labels.append(labels.cpu())
    model.train(was_training)
    hits = {k: torch.cat(v) for k, v in all_hits.items()}
    return accuracy_report(hits, torch.cat(all_labels), train_counts)
