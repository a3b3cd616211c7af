"""Image transforms for the long-tail datasets, written with torch and Pillow alone.

torchvision.transforms would do the same, but torchvision must match the installed torch build
exactly and is optional here, so the few transforms the recipes need are implemented directly.
Random choices use torch's global generator, which the trainer seeds at every epoch so a resumed
run draws the same crops as an uninterrupted one.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

Transform = Callable


class Compose:
    def __init__(self, steps: Sequence[Transform]):
        self.steps = list(steps)

    def __call__(self, x):
        for step in self.steps:
            x = step(x)
        return x


def to_float_chw(image) -> torch.Tensor:
    """uint8 HWC array / PIL image -> float CHW tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PadRandomCrop:
    """Zero-pad by `padding` then crop back to the original size at a random offset (CIFAR recipe)."""

    def __init__(self, padding: int):
        self.padding = int(padding)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        _, h, w = x.shape
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        top, left = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        return padded[:, top : top + h, left : left + w]


class RandomHorizontalFlip:
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if bool(torch.rand(()) < 0.5) else x


class ResizeShorter:
    """Resize a PIL image so its shorter side is `size` (bilinear)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image):
        w, h = image.size
        scale = self.size / min(w, h)
        return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample=2)  # 2 = BILINEAR


class Crop:
    """Crop a size x size square from a PIL image: at random (training) or in the centre."""

    def __init__(self, size: int, random: bool):
        self.size, self.random = int(size), random

    def __call__(self, image):
        w, h = image.size
        if self.random:
            left = int(torch.randint(0, w - self.size + 1, ()))
            top = int(torch.randint(0, h - self.size + 1, ()))
        else:
            left, top = (w - self.size) // 2, (h - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))


def array_transform(train: bool, mean, std, padding: int, flip: bool) -> Compose:
    """For in-memory uint8 images (CIFAR, digits): pad-and-crop (+ flip) when training."""
    steps: list = [to_float_chw]
    if train and padding > 0:
        steps.append(PadRandomCrop(padding))
    if train and flip:
        steps.append(RandomHorizontalFlip())
    steps.append(Normalize(mean, std))
    return Compose(steps)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def file_transform(train: bool, size: int = 224, resize: int = 256, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Compose:
    """For image files (ImageNet-LT, Places-LT): shorter side to `resize`, crop `size`, flip when training."""
    steps: list = [ResizeShorter(resize), Crop(size, random=train), to_float_chw]
    if train:
        steps.append(RandomHorizontalFlip())
    steps.append(Normalize(mean, std))
    return Compose(steps)
