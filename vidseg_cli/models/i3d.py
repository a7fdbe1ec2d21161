"""Two-stream Inception-v1 I3D (Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?",
§2.4 and Fig. 3), as the widely used PyTorch port (piergiaj/pytorch-i3d) lays it out.

Attribute names equal the port's state_dict keys (`Conv3d_1a_7x7.conv3d.weight`,
`Mixed_3b.b1b.bn.running_var`, `logits.conv3d.bias`, ...: the 344 keys of
tests/data/reference/pytorch_i3d_rgb_flow.json), so `rgb_imagenet.pt` (in_channels=3) and
`flow_imagenet.pt` (in_channels=2) load by key (models/checkpoint/layouts.py).

The port's conventions, which its weights (converted from DeepMind's TensorFlow model)
need to give their outputs:
- every convolution and max pool pads TensorFlow's way ("SAME"): per input size, a total of
  max((ceil(n / s) - 1) * s + k - n, 0) cells, the smaller half in front (`same_padding`);
- BatchNorm eps 0.001 (TensorFlow's), momentum 0.01; convolutions have no bias;
- inputs in [-1, 1]: RGB as x / 255 * 2 - 1, flow (x, y) clipped to +-20 pixels and / 20.
Max pools pad with zeros, as the port does; every pool follows a ReLU, so its inputs are
>= 0 and a zero never wins over a real cell, which makes this TensorFlow's max pool (where
padding never wins) exactly.

The feature (`forward_features`) is the port's `extract_features`: Mixed_5c, then an average
pool of kernel 2 x 7 x 7 and stride 1. A 16 x 224 x 224 clip gives Mixed_5c 1024 x 2 x 7 x 7
and one 1024-d vector. Other clip sizes: the kernel is cut to the map where the map is
smaller, and the positions a larger map leaves are averaged, so every clip gives one 1024-d
vector (for 16 x 224 x 224 exactly the port's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_cli.models.common import check_video_input, conv3d_layout, triple
from vidseg_cli.models.registry import MODELS

I3D_FEATURE_DIM = 1024  # Mixed_5c channels
I3D_POOL = (2, 7, 7)  # the port's average pool before the logits
I3D_BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon
# Inception modules (Fig. 3): name -> (input channels, (b0, b1a, b1b, b2a, b2b, b3b) outputs)
I3D_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one dimension: (front, back) cells so that the output
    has ceil(size / stride) cells; the smaller half goes in front."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """x (B x C x T x H x W) zero-padded for a SAME kernel/stride over T, H, W."""
    pads: list[int] = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pads.extend(same_padding(int(n), k, s))  # F.pad lists the last dimension first
    return F.pad(x, pads) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d with SAME padding, then BatchNorm (eps 1e-3) and ReLU; `conv3d` and `bn`
    are the port's names."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Sequence[int] = 1,
                 stride: int | Sequence[int] = 1, batch_norm: bool = True, relu: bool = True,
                 bias: bool = False):
        super().__init__()
        self.kernel, self.stride = triple(kernel), triple(stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=I3D_BN_EPS, momentum=0.01) if batch_norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pool with SAME padding (zeros; see the module docstring for why that is exact)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]):
        super().__init__()
        self.kernel, self.stride = triple(kernel), triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels (Fig. 3 right): 1x1x1; 1x1x1 then 3x3x3;
    1x1x1 then 3x3x3; 3x3x3 max pool then 1x1x1."""

    def __init__(self, in_channels: int, out: Sequence[int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], 3)
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], 3)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """I3D up to the logits; `forward_features` gives the 1024-d clip feature."""

    def __init__(
        self,
        num_classes: int = 400,  # logits outputs (Kinetics-400); 0: no logits layer
        in_channels: int = 3,  # 3: RGB stream; 2: flow stream (x, y)
        dropout: float = 0.5,  # before the logits (the port's nn.Dropout(0.5))
    ):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.feature_dim = I3D_FEATURE_DIM
        # The port's endpoints in order (Fig. 3 left); the pools hold no weights.
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, 7, 2)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*I3D_MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionModule(*I3D_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, name, InceptionModule(*I3D_MIXED[name]))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*I3D_MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionModule(*I3D_MIXED["Mixed_5c"])
        self.dropout = nn.Dropout(dropout)
        self.logits = (Unit3D(I3D_FEATURE_DIM, num_classes, batch_norm=False, relu=False, bias=True)
                       if num_classes > 0 else None)
        self._endpoints = [
            "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
            "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b",
            "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b",
            "Mixed_5c",
        ]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x T x H x W in [-1, 1] -> Mixed_5c, B x 1024 x ceil(T/8) x ceil(H/32) x ceil(W/32)."""
        check_video_input(x, "i3d", self.in_channels, (1, 1, 1))
        x = conv3d_layout(x)
        for name in self._endpoints:
            x = getattr(self, name)(x)
        return x

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The port's 2x7x7 average pool (stride 1) of Mixed_5c, kernel cut to smaller maps:
        B x 1024 x t' x h' x w'."""
        h = self.trunk(x)
        kernel = [min(k, n) for k, n in zip(I3D_POOL, h.shape[2:])]
        return F.avg_pool3d(h, kernel, stride=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """One 1024-d feature per clip: the pooled map, averaged over what positions remain."""
        return self.pooled(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits per clip, B x num_classes: the port's per-position logits averaged
        (the logits layer is linear, so this is the logits of the averaged feature)."""
        if self.logits is None:
            raise ValueError("this i3d was built without logits (num_classes=0)")
        f = self.dropout(self.forward_features(x))
        return self.logits(f[:, :, None, None, None]).flatten(1)


MODELS.register("i3d", InceptionI3d)
