"""Dataset names of the training CLI -> (train, test) datasets and a default model."""

from __future__ import annotations

from typing import Optional

from .cifar_lt import CIFARLongTail
from .digits import digits_long_tail
from .oltr import oltr_dataset

DATASETS = ("digits-lt", "sklearn-digits-lt", "cifar10-lt", "cifar100-lt", "imagenet-lt", "places-lt")
DEFAULT_MODEL = {
    "digits-lt": "cnn",
    "sklearn-digits-lt": "cnn",
    "cifar10-lt": "resnet32",
    "cifar100-lt": "resnet32",
    "imagenet-lt": "torchvision:resnet50",
    "places-lt": "torchvision:resnet50",
}


def build_datasets(
    name: str,
    data_dir: Optional[str] = None,
    split_dir: Optional[str] = None,
    imb_factor: float = 100,
    data_seed: int = 0,
    image_size: int = 224,
):
    """(train, test) of dataset `name`; both have .num_classes and .class_counts; train has .image_shape
    for the in-memory datasets. imb_factor applies to the digits and CIFAR (ImageNet-LT and Places-LT
    are fixed by their split files)."""
    if name in ("digits-lt", "sklearn-digits-lt"):
        return digits_long_tail("mnist" if name == "digits-lt" else "sklearn", imb_factor, seed=data_seed)
    if name in ("cifar10-lt", "cifar100-lt"):
        if not data_dir:
            raise ValueError(f"dataset {name} needs --data-dir: the folder holding the CIFAR python archive or its extracted folder")
        num_classes = 10 if name == "cifar10-lt" else 100
        train = CIFARLongTail(data_dir, num_classes, imb_factor, train=True, seed=data_seed)
        test = CIFARLongTail(data_dir, num_classes, imb_factor, train=False, seed=data_seed)
        return train, test
    if name in ("imagenet-lt", "places-lt"):
        if not data_dir:
            raise ValueError(f"dataset {name} needs --data-dir: the image root the split files' paths are relative to")
        train = oltr_dataset(name, data_dir, "train", split_dir, image_size=image_size)
        test = oltr_dataset(name, data_dir, "test", split_dir, image_size=image_size)
        train.image_shape = test.image_shape = (3, image_size, image_size)
        return train, test
    raise ValueError(f"dataset must be one of {DATASETS}, got dataset={name!r}")
