"""R(2+1)D-18 (Tran et al. 2018) with torchvision's module names, written from its key layout.

Module and state_dict names equal torchvision's `r2plus1d_18` (layout and mid-channel counts
in ../shared/reference/torchvision_r2plus1d_18*.{json,txt}), so its Kinetics-400 state_dict
loads by key; torchvision itself is not used.

- stem: Conv3d(3, 45, 1x7x7, stride 1x2x2) - BN - ReLU - Conv3d(45, 64, 3x1x1) - BN - ReLU.
- layer1..layer4: two BasicBlocks each, 64/128/256/512 channels. A block is
  conv1 = [(2+1)D conv, BN, ReLU], conv2 = [(2+1)D conv, BN], plus a 1x1x1 conv + BN
  shortcut (`downsample`) where the stride or channel count changes; then ReLU.
  A (2+1)D conv is Conv3d(in, mid, 1x3x3) - BN - ReLU - Conv3d(mid, out, 3x1x1), with
  mid = (in * out * 27) // (in * 9 + 3 * out) so it has as many weights as a 3x3x3 conv;
  both (2+1)D convs of a block use the mid count of (block input, block output).
- layer2..layer4 halve T, H and W (stride 2 on the first block); avgpool; fc (400 classes).
  Spatially the network reduces by 16 (there is no max pool), temporally by 8.

Options for Sep3D: per layer group, a temporal and a spatial stride. Where a stride is below
the standard one and `dilate` is on, the dilation of the following convolutions grows by
the factor removed (DeepLab's rule), so every receptive field stays as in the standard
network: in the group that loses its stride, the first (2+1)D conv keeps the previous
dilation and the rest use the new one; later groups inherit it. The width multiplier scales
every channel count (45 in the stem too); width 1.0 is torchvision's network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidseg_cli.models.common import check_video_input, conv3d_layout, scaled
from vidseg_cli.models.registry import MODELS

R2P1D_CHANNELS = (64, 128, 256, 512)  # layer1..layer4
R2P1D_STEM_MID = 45  # torchvision's R2Plus1dStem
STANDARD_STRIDES = (1, 2, 2, 2)  # layer1..layer4, in T and in H, W


def midplanes(inplanes: int, planes: int) -> int:
    """Mid channels of a (2+1)D conv with as many weights as a 3x3x3 conv (R(2+1)D §3.5)."""
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class Conv2Plus1D(nn.Sequential):
    """Spatial 1x3x3 conv, BN, ReLU, temporal 3x1x1 conv (keys 0, 1, 3 as torchvision)."""

    def __init__(
        self,
        in_planes: int,  # input channels
        out_planes: int,  # output channels
        mid_planes: int,  # channels between the spatial and the temporal conv
        stride: tuple[int, int] = (1, 1),  # (temporal, spatial)
        dilation: tuple[int, int] = (1, 1),  # (temporal, spatial)
    ):
        (st, ss), (dt, ds) = stride, dilation
        super().__init__(
            nn.Conv3d(
                in_planes, mid_planes, (1, 3, 3), stride=(1, ss, ss), padding=(0, ds, ds),
                dilation=(1, ds, ds), bias=False,
            ),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                mid_planes, out_planes, (3, 1, 1), stride=(st, 1, 1), padding=(dt, 0, 0),
                dilation=(dt, 1, 1), bias=False,
            ),
        )


class BasicBlock(nn.Module):
    """Two (2+1)D convs with a residual connection (torchvision's video BasicBlock keys)."""

    def __init__(
        self,
        inplanes: int,  # input channels
        planes: int,  # output channels
        stride: tuple[int, int] = (1, 1),  # (temporal, spatial) stride of the first conv
        dilation_in: tuple[int, int] = (1, 1),  # (temporal, spatial) dilation of conv1
        dilation_out: tuple[int, int] = (1, 1),  # (temporal, spatial) dilation of conv2
    ):
        super().__init__()
        mid = midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            Conv2Plus1D(inplanes, planes, mid, stride, dilation_in),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            Conv2Plus1D(planes, planes, mid, (1, 1), dilation_out), nn.BatchNorm3d(planes)
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != (1, 1) or inplanes != planes:
            st, ss = stride
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride=(st, ss, ss), bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class R2Plus1D18(nn.Module):
    """R(2+1)D-18 classifier; `stages()` returns each group's feature map (for Sep3D)."""

    def __init__(
        self,
        num_classes: int = 400,  # fc outputs (400 Kinetics); 0 drops avgpool+fc (encoder use)
        width: float = 1.0,  # channel multiplier; 1.0 is torchvision's r2plus1d_18
        temporal_strides: Sequence[int] = STANDARD_STRIDES,  # layer1..layer4, each 1 or 2
        spatial_strides: Sequence[int] = STANDARD_STRIDES,  # layer1..layer4, each 1 or 2
        dilate: bool = True,  # dilate after a reduced stride (module docstring)
        in_channels: int = 3,  # RGB
    ):
        super().__init__()
        t_str, s_str = tuple(temporal_strides), tuple(spatial_strides)
        for name, strides in (("temporal_strides", t_str), ("spatial_strides", s_str)):
            if len(strides) != 4 or any(s not in (1, 2) for s in strides):
                raise ValueError(f"{name} must be four strides of 1 or 2, got {strides}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.temporal_strides, self.spatial_strides = t_str, s_str
        chans = [scaled(c, width) for c in R2P1D_CHANNELS]
        stem_mid = scaled(R2P1D_STEM_MID, width)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, chans[0], (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False),
            nn.BatchNorm3d(chans[0]),
            nn.ReLU(inplace=True),
        )
        self.dilations: list[tuple[int, int]] = []  # (temporal, spatial) at each group's end
        dt = ds = 1
        inplanes = chans[0]
        for i, planes in enumerate(chans):
            st, ss = t_str[i], s_str[i]
            prev = (dt, ds)
            if dilate:
                dt *= STANDARD_STRIDES[i] // st
                ds *= STANDARD_STRIDES[i] // ss
            blocks = [BasicBlock(inplanes, planes, (st, ss), prev, (dt, ds))]
            blocks.append(BasicBlock(planes, planes, (1, 1), (dt, ds), (dt, ds)))
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.dilations.append((dt, ds))
            inplanes = planes
        self.channels = tuple(chans)  # output channels of layer1..layer4
        self.feature_dim = chans[-1]
        if num_classes > 0:
            self.avgpool = nn.AdaptiveAvgPool3d(1)
            self.fc = nn.Linear(chans[-1], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's video ResNet init: He (fan_out) convs, BN 1/0, fc N(0, 0.01).
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def out_stride(self) -> tuple[int, int]:
        """(temporal, spatial) reduction of layer4 against the input."""
        t = s = 1
        for st, ss in zip(self.temporal_strides, self.spatial_strides):
            t, s = t * st, s * ss
        return t, s * 2  # the stem halves H and W

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[layer1, layer2, layer3, layer4] outputs. x: B x 3 x T x H x W."""
        check_video_input(x, "r2plus1d-18", self.in_channels, (1, 1, 1))
        x = self.stem(conv3d_layout(x))  # B x 64 x T x H/2 x W/2
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled layer4. B x 512w."""
        return self.stages(x)[-1].mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_classes <= 0:
            raise RuntimeError("r2plus1d-18 was built without a classifier (num_classes=0)")
        return self.fc(self.forward_features(x))  # B x num_classes


MODELS.register("r2plus1d-18", R2Plus1D18)
