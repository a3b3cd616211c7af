"""In-memory image datasets and the long-tail selection shared by CIFAR-LT and the digits."""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise a ValueError naming `where` when a label is outside [0, num_classes)."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"labels out of range in {where}: {int(bad.sum())} label(s) outside [0, {num_classes}), "
            f"first at index {first}: label={int(labels[first])}"
        )


def shuffle_by_class(labels: np.ndarray, rng: np.random.RandomState) -> List[np.ndarray]:
    """Per class in label order (np.unique(labels)), that class's indices shuffled by `rng`."""
    shuffled = []
    for the_class in np.unique(labels):
        idx = np.where(labels == the_class)[0]
        rng.shuffle(idx)
        shuffled.append(idx)
    return shuffled


def select_long_tail(labels: np.ndarray, counts: Sequence[int], rng: np.random.RandomState) -> np.ndarray:
    """Indices kept by LDAM-DRW's gen_imbalanced_data: per class in label order, shuffle that class's
    indices with `rng` and keep the first counts[c]. Classes are taken as np.unique(labels)."""
    classes = np.unique(labels)
    if len(classes) != len(counts):
        raise ValueError(f"the data has {len(classes)} distinct labels but the profile has {len(counts)} classes")
    for the_class, n in zip(classes, counts):
        have = int((labels == the_class).sum())
        if n > have:
            raise ValueError(f"class {int(the_class)} has {have} images, fewer than the {n} the profile keeps")
    return np.concatenate([idx[:n] for idx, n in zip(shuffle_by_class(labels, rng), counts)])


class ArrayDataset(Dataset):
    """uint8 images (N, H, W, C) with integer labels; items are (transform(image), label).

    Attributes every long-tail dataset of this package has: targets (list of int), num_classes,
    class_counts (images per class in this split).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, transform: Optional[Callable] = None):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 array (N, H, W, C), got dtype={images.dtype} shape={images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        labels = np.asarray(labels, dtype=np.int64)
        check_labels(labels, num_classes, "the dataset labels")
        self.images, self.num_classes, self.transform = images, int(num_classes), transform
        self.targets: List[int] = labels.tolist()
        self.class_counts: List[int] = np.bincount(labels, minlength=num_classes).tolist()

    @property
    def image_shape(self):
        """(channels, height, width) of the images."""
        _, h, w, c = self.images.shape
        return c, h, w

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.images[i]
        x = self.transform(image) if self.transform is not None else torch.from_numpy(image.copy())
        return x, self.targets[i]
