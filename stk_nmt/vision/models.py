"""Models: ResNet-32 for 32x32 inputs, a small CNN and an MLP for the digits, torchvision backbones.

ResNet-32 follows He et al. 2016 (CIFAR variant: 3 stages of 5 basic blocks, 16/32/64 channels,
parameter-free "option A" shortcuts, 0.46M parameters), the backbone of LDAM-DRW and of the
long-tail CIFAR literature. `normed=True` swaps the last layer for a cosine classifier, which LDAM
expects. torchvision backbones ("torchvision:resnet50"...) are built only when torchvision is
installed.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

MODELS = ("resnet32", "cnn", "mlp", "torchvision:<name>")


class CosineLinear(nn.Module):
    """Cosine similarity between the normalised features and normalised class weights."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


def classifier(in_features: int, num_classes: int, normed: bool) -> nn.Module:
    return CosineLinear(in_features, num_classes) if normed else nn.Linear(in_features, num_classes)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.extra_planes = planes - in_planes  # option A: subsample and zero-pad the channels
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.extra_planes == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra_planes // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra_planes - half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int, in_channels: int = 3, normed: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride] + [1] * (blocks_per_stage - 1):
                blocks.append(BasicBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = classifier(64, num_classes, normed)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(F.relu(self.bn1(self.conv1(x))))
        return self.fc(out.mean(dim=(2, 3)))


def resnet32(num_classes: int, in_channels: int = 3, normed: bool = False) -> CifarResNet:
    return CifarResNet(5, num_classes, in_channels, normed)


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU-pool stages (32, 64 channels) and a global average pool: for 8x8 to 32x32 digits."""

    def __init__(self, num_classes: int, in_channels: int = 1, normed: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = classifier(64, num_classes, normed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class MLP(nn.Module):
    def __init__(self, num_classes: int, image_shape: Tuple[int, int, int], hidden: int = 256, normed: bool = False):
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU())
        self.fc = classifier(hidden, num_classes, normed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def torchvision_model(name: str, num_classes: int) -> nn.Module:
    try:
        import torchvision
    except ImportError as err:
        raise ImportError(
            f"model 'torchvision:{name}' needs torchvision, which is not installed. Install torch and "
            f"torchvision as a matched pair (e.g. pip install torch==2.14.1 torchvision==0.29.1), "
            f"or pick one of the built-in models: resnet32, cnn, mlp"
        ) from err
    try:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError as err:
        raise ValueError(f"torchvision has no model named {name!r}: {err}") from err


def build_model(name: str, num_classes: int, image_shape: Tuple[int, int, int], normed: bool = False) -> nn.Module:
    """The model called `name` (see MODELS) for images of shape (channels, height, width)."""
    if name == "resnet32":
        return resnet32(num_classes, image_shape[0], normed)
    if name == "cnn":
        return SmallCNN(num_classes, image_shape[0], normed)
    if name == "mlp":
        return MLP(num_classes, image_shape, normed=normed)
    if name.startswith("torchvision:"):
        if normed:
            raise ValueError("normed (cosine) classifiers are built for resnet32, cnn and mlp only, not torchvision models")
        return torchvision_model(name.split(":", 1)[1], num_classes)
    raise ValueError(f"model must be one of {MODELS}, got model={name!r}")
