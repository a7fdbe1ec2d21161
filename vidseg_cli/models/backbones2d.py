"""2D backbones for extract-features (FSN §3.2): ResNet-18/50 and VGG-16 with torchvision's
module names, written from their key layouts (../shared/reference/torchvision_*.json), so
ImageNet state_dicts load by key; torchvision itself is not used.

Each returns globally pooled features (`forward_features()`, B x feature_dim) and, when built with
`num_classes > 0`, class logits (`forward()`): `vidseg train backbone` trains one as a frame
classifier, TSN-style. `in_channels` = 10 makes a flow network (5 stacked x/y flow fields);
loading 3-channel RGB weights into it applies TSN's cross-modality initialization
(`cross_modality_init`: the first conv's filters averaged over RGB, replicated to every
flow channel). `width` scales every channel count (1.0 = torchvision's networks).
"""

from __future__ import annotations

import torch
from torch import nn

from vidseg_cli.models.common import ModelInputError, scaled
from vidseg_cli.models.registry import MODELS


def cross_modality_init(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """TSN's cross-modality initialization: average an RGB conv's filters over the input
    channels and replicate the mean to `in_channels` channels. out x 3 x k x k -> out x in x k x k."""
    return weight.mean(dim=1, keepdim=True).expand(-1, in_channels, *weight.shape[2:]).clone()


def _check_image(x: torch.Tensor, name: str, in_channels: int, min_hw: int) -> None:
    if x.dim() != 4:
        raise ModelInputError(f"{name} takes B x C x H x W images, got a {x.dim()}-d tensor")
    if x.shape[1] != in_channels:
        raise ModelInputError(f"{name} takes {in_channels} input channels, got {x.shape[1]}")
    if min(x.shape[2:]) < min_hw:
        raise ModelInputError(
            f"{name} needs images of at least {min_hw}x{min_hw} pixels, got {x.shape[2]}x{x.shape[3]}"
        )


class BasicBlock2d(nn.Module):
    """ResNet-18/34 block: 3x3 - BN - ReLU - 3x3 - BN, + shortcut, ReLU (torchvision keys)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,  # input channels
        planes: int,  # block width (output = planes * expansion)
        stride: int = 1,  # stride of the first conv and of the shortcut
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck2d(nn.Module):
    """ResNet-50 block: 1x1 - 3x3 (stride here, torchvision's "v1.5") - 1x1 (x4 channels)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,  # input channels
        planes: int,  # bottleneck width (output = planes * 4)
        stride: int = 1,  # stride of the 3x3 conv and of the shortcut
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))


class ResNet2D(nn.Module):
    """ResNet (He et al. 2016) as torchvision lays it out; features = global average pool."""

    def __init__(
        self,
        depth: int = 18,  # 18 (BasicBlock x [2,2,2,2]) or 50 (Bottleneck x [3,4,6,3])
        num_classes: int = 0,  # fc outputs (1000 ImageNet); 0: no fc, features only
        width: float = 1.0,  # channel multiplier; 1.0 is torchvision's network
        in_channels: int = 3,  # 3 for RGB, 10 for 5 stacked flow fields (TSN)
    ):
        super().__init__()
        if depth == 18:
            block, counts = BasicBlock2d, (2, 2, 2, 2)
        elif depth == 50:
            block, counts = Bottleneck2d, (3, 4, 6, 3)
        else:
            raise ValueError(f"depth must be 18 or 50, got {depth}")
        self.name = f"resnet{depth}"
        self.in_channels = in_channels
        self.num_classes = num_classes
        c0 = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, c0, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = c0
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
            planes = scaled(planes, width)
            blocks = []
            for j in range(n):
                blocks.append(block(inplanes, planes, 2 if (j == 0 and i > 0) else 1))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = inplanes
        self.fc = nn.Linear(inplanes, num_classes) if num_classes > 0 else None
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x feature_dim (global average pool of layer4)."""
        _check_image(x, self.name, self.in_channels, 1)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # B x 64w x H/4 x W/4
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # B x D x H/32 x W/32
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise RuntimeError(f"{self.name} was built without a classifier (num_classes=0)")
        return self.fc(self.forward_features(x))  # B x num_classes


VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG_HEADS = ("fc7", "gap")


class VGG16(nn.Module):
    """VGG-16 (Simonyan & Zisserman) as torchvision lays it out (`features.N`, `classifier.N`).

    head="fc7": features are fc7 activations after ReLU (4096; the classic VGG feature, via
    torchvision's 7x7 adaptive average pool and classifier.0/.3); head="gap": the global
    average pool of conv5_3 (512), for which classifier.0/.3 are not built.
    """

    def __init__(
        self,
        num_classes: int = 0,  # classifier.6 outputs (1000 ImageNet); 0: features only
        head: str = "fc7",  # "fc7" or "gap" (class docstring)
        width: float = 1.0,  # channel multiplier (conv and fc widths); 1.0 is VGG-16
        in_channels: int = 3,  # 3 for RGB, 10 for 5 stacked flow fields (TSN)
        dropout: float = 0.5,  # after fc6 and fc7, as torchvision
    ):
        super().__init__()
        if head not in VGG_HEADS:
            raise ValueError(f"head must be one of {VGG_HEADS}, got {head!r}")
        if head == "gap" and num_classes > 0:
            raise ValueError("VGG16 with head='gap' has no fc layers to classify with")
        self.head = head
        self.in_channels = in_channels
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        c = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                v = scaled(int(v), width)
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)  # the conv stack (torchvision's name)
        fc = scaled(4096, width)
        if head == "fc7":
            self.avgpool = nn.AdaptiveAvgPool2d(7)
            cls: list[nn.Module] = [
                nn.Linear(c * 7 * 7, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            ]
            if num_classes > 0:
                cls.append(nn.Linear(fc, num_classes))
            self.classifier = nn.Sequential(*cls)
            self.feature_dim = fc
        else:
            self.feature_dim = c
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x feature_dim (fc7 after ReLU, or the GAP of conv5_3)."""
        _check_image(x, "vgg16", self.in_channels, 32)
        x = self.features(x)  # B x 512w x H/32 x W/32
        if self.head == "gap":
            return x.mean(dim=(2, 3))
        x = self.avgpool(x).flatten(1)  # B x 25088w
        return self.classifier[:5](x)  # fc6, ReLU, dropout, fc7, ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_classes <= 0:
            raise RuntimeError("vgg16 was built without a classifier (num_classes=0)")
        return self.classifier[5:](self.forward_features(x))  # dropout, fc8: B x num_classes


class ResNet18(ResNet2D):
    """ResNet-18; arguments as ResNet2D."""

    def __init__(self, num_classes: int = 0, width: float = 1.0, in_channels: int = 3):
        super().__init__(depth=18, num_classes=num_classes, width=width, in_channels=in_channels)


class ResNet50(ResNet2D):
    """ResNet-50; arguments as ResNet2D."""

    def __init__(self, num_classes: int = 0, width: float = 1.0, in_channels: int = 3):
        super().__init__(depth=50, num_classes=num_classes, width=width, in_channels=in_channels)


MODELS.register("resnet18", ResNet18)
MODELS.register("resnet50", ResNet50)
MODELS.register("vgg16", VGG16)
