"""CIFAR-10-LT / CIFAR-100-LT from the python-pickle CIFAR archive, selected as in LDAM-DRW.

Train: img_max = images per class of the full train set (5,000 / 500), the exponential profile
(class_profile.long_tail_counts), a numpy MT19937 generator seeded once with 0, and for each class in
label order: shuffle that class's indices, keep the first n_i. CIFAR-100-LT has 19,573 / 12,608 /
10,847 training images at IF 10 / 50 / 100. The test split stays balanced (the whole test set).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from typing import Callable, Optional, Tuple

import numpy as np

from .arrays import ArrayDataset, check_labels, select_long_tail
from .class_profile import check_imbalance_factor, long_tail_counts
from .transforms import array_transform

# folder inside the archive, archive name, label key, train files, test files
CIFAR_LAYOUT = {
    10: ("cifar-10-batches-py", "cifar-10-python.tar.gz", "labels", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    100: ("cifar-100-python", "cifar-100-python.tar.gz", "fine_labels", ["train"], ["test"]),
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
CIFAR_MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2673, 0.2564, 0.2762)}


def _check_num_classes(num_classes: int) -> None:
    if num_classes not in CIFAR_LAYOUT:
        raise ValueError(f"num_classes must be 10 or 100 for CIFAR, got num_classes={num_classes!r}")


def find_cifar_folder(root: str, num_classes: int) -> str:
    """The extracted CIFAR folder under `root` (or `root` itself); extracts the archive if only it is there."""
    _check_num_classes(num_classes)
    folder, archive, *_ = CIFAR_LAYOUT[num_classes]
    candidates = [root, os.path.join(root, folder)]
    for path in candidates:
        if os.path.isfile(os.path.join(path, CIFAR_LAYOUT[num_classes][3][0])):
            return path
    archive_path = os.path.join(root, archive)
    if os.path.isfile(archive_path):
        _extract_atomically(archive_path, root, folder)
        return os.path.join(root, folder)
    raise FileNotFoundError(
        f"CIFAR-{num_classes} not found under data root {root!r}: expected {os.path.join(root, folder)}/ "
        f"(python pickle version) or the archive {archive_path}. Download {CIFAR_URL}{archive} "
        f"and pass its folder as the data root."
    )


def _extract_atomically(archive_path: str, root: str, folder: str) -> None:
    """Extract into a temporary folder beside the target, then rename: an interrupted run leaves nothing half-written."""
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=root)
    try:
        with tarfile.open(archive_path, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        extracted = os.path.join(tmp, folder)
        if not os.path.isdir(extracted):
            raise FileNotFoundError(f"archive {archive_path} has no folder {folder}/: is it the CIFAR python version?")
        os.replace(extracted, os.path.join(root, folder))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_cifar(root: str, num_classes: int, train: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64) of one split, in file order."""
    folder = find_cifar_folder(root, num_classes)
    _, _, label_key, train_files, test_files = CIFAR_LAYOUT[num_classes]
    images, labels = [], []
    for name in train_files if train else test_files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CIFAR-{num_classes} file missing: {path} (re-extract {CIFAR_URL}{CIFAR_LAYOUT[num_classes][1]})")
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry[label_key])
    labels = np.asarray(labels, dtype=np.int64)
    check_labels(labels, num_classes, folder)
    return np.concatenate(images).transpose(0, 2, 3, 1), labels


class CIFARLongTail(ArrayDataset):
    """CIFAR-LT: the long-tailed train split (LDAM-DRW selection) or the balanced test split.

    Args:
        root: folder holding cifar-100-python/ (or cifar-10-batches-py/), or its .tar.gz archive.
        num_classes: 100 (CIFAR-100-LT) or 10 (CIFAR-10-LT).
        imb_factor: IF > 1, the ratio of the largest to the smallest class (10, 50, 100 in papers).
        train: the long-tailed train split, else the balanced test split.
        seed: the numpy seed of the per-class shuffles (0 in LDAM-DRW).
        transform: applied to each uint8 HWC image; None = the CIFAR recipe (pad 4, crop, flip).
    """

    def __init__(
        self,
        root: str,
        num_classes: int = 100,
        imb_factor: float = 100,
        train: bool = True,
        seed: int = 0,
        transform: Optional[Callable] = None,
    ):
        _check_num_classes(num_classes)
        check_imbalance_factor(imb_factor)
        images, labels = load_cifar(root, num_classes, train)
        if train:
            img_max = int(len(images) / num_classes)
            self.profile = long_tail_counts(num_classes, imb_factor, img_max)
            # RandomState(seed).shuffle is the very generator np.random.seed(seed) + np.random.shuffle use,
            # without touching numpy's global state.
            keep = select_long_tail(labels, self.profile, np.random.RandomState(seed))
            images, labels = images[keep], labels[keep]
        if transform is None:
            transform = array_transform(train, CIFAR_MEAN[num_classes], CIFAR_STD[num_classes], padding=4, flip=True)
        super().__init__(images, labels, num_classes, transform)
