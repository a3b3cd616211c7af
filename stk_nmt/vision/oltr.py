"""ImageNet-LT and Places-LT: image lists from the OLTR split files plus a local image root.

Split files (Liu et al. 2019, github.com/zhmiao/OpenLongTailRecognition-OLTR, linked from its
README): ImageNet_LT_{train,val,test}.txt and Places_LT_{train,val,test}.txt, one image per line,
"relative/path label". ImageNet-LT: 1000 classes, 115,846 train images, test = the 50,000 ILSVRC-2012
validation images. Places-LT: 365 classes, 62,500 train, 36,500 test (Places365-Standard images).
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset

from .transforms import file_transform

OLTR_DATASETS = {
    # name: (split file prefix, classes, where the images come from)
    "imagenet-lt": ("ImageNet_LT", 1000, "ILSVRC-2012 train and val images (image-net.org)"),
    "places-lt": ("Places_LT", 365, "Places365-Standard images (places2.csail.mit.edu)"),
}
OLTR_SPLITS = ("train", "val", "test")
OLTR_URL = "https://github.com/zhmiao/OpenLongTailRecognition-OLTR"


def read_split_file(path: str, num_classes: int) -> Tuple[List[str], List[int]]:
    """Relative paths and labels of a "relative/path label" list; ValueError naming file:line on bad lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path} (the OLTR split files are linked from {OLTR_URL})")
    paths, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{line_no}: expected 'relative/path label', got {line!r}")
            label = int(parts[1])
            if not 0 <= label < num_classes:
                raise ValueError(f"{path}:{line_no}: label out of range [0, {num_classes}): label={label}")
            paths.append(parts[0])
            labels.append(label)
    if not paths:
        raise ValueError(f"split file {path} lists no image")
    return paths, labels


class SplitFileDataset(Dataset):
    """Images listed by a split file, loaded from `image_root`; items are (transform(PIL RGB image), label).

    Every listed image is checked at construction (one stat per file), so a wrong image root fails
    at once with the missing paths instead of hours into training.
    """

    def __init__(self, image_root: str, split_file: str, num_classes: int, transform: Optional[Callable] = None, source_hint: str = ""):
        if not os.path.isdir(image_root):
            raise FileNotFoundError(f"image root not found: image_root={image_root!r} {source_hint}".rstrip())
        self.image_root, self.num_classes, self.transform = image_root, int(num_classes), transform
        self.paths, self.targets = read_split_file(split_file, num_classes)
        missing = [p for p in self.paths if not os.path.isfile(os.path.join(image_root, p))]
        if missing:
            shown = ", ".join(missing[:5])
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.paths)} images listed in {split_file} are missing under image root "
                f"{image_root!r}, e.g. {shown}. {source_hint}".rstrip()
            )
        self.class_counts = np.bincount(np.asarray(self.targets), minlength=num_classes).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image  # Pillow comes with matplotlib; only needed when images are read

        with Image.open(os.path.join(self.image_root, self.paths[i])) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform is not None else image), self.targets[i]


def oltr_dataset(name: str, image_root: str, split: str, split_dir: Optional[str] = None, transform: Optional[Callable] = None, image_size: int = 224):
    """The ImageNet-LT / Places-LT `split` ("train", "val", "test"); split files in split_dir (default image_root)."""
    if name not in OLTR_DATASETS:
        raise ValueError(f"name must be one of {tuple(OLTR_DATASETS)}, got name={name!r}")
    if split not in OLTR_SPLITS:
        raise ValueError(f"split must be one of {OLTR_SPLITS}, got split={split!r}")
    prefix, num_classes, source = OLTR_DATASETS[name]
    split_file = os.path.join(split_dir or image_root, f"{prefix}_{split}.txt")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(
            f"{name} split file not found: {split_file}. Get {prefix}_{{train,val,test}}.txt from the OLTR "
            f"split files linked in {OLTR_URL} and pass their folder as --split-dir"
        )
    if transform is None:
        transform = file_transform(split == "train", size=image_size, resize=round(image_size * 256 / 224))
    hint = f"({name} needs the {source}.)"
    return SplitFileDataset(image_root, split_file, num_classes, transform, source_hint=hint)
