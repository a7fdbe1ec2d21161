"""C3D (Tran et al. 2015) as used by 3DFCN §3.3 and S-CNN §3.1.

Layout (S-CNN §3.1, 3DFCN §3.3): conv1(64) - pool1(1,2,2) - conv2(128) - pool2 - conv3a(256) -
conv3b(256) - pool3 - conv4a(512) - conv4b(512) - pool4 - conv5a(512) - conv5b(512) - pool5 -
fc6(4096) - fc7(4096) - fc8(classes). Every conv is 3x3x3, stride 1, padding 1, followed by
ReLU; pool2..pool5 are 2x2x2 max pools of stride 2; dropout 0.5 follows fc6 and fc7.

Attribute names equal the keys of the widely used PyTorch port of the Sports-1M weights
(DavideA/c3d-pytorch, layout in ../shared/reference/c3d_sports1m_pytorch_port.json), so
its state_dict loads by key (models/checkpoint/layouts.py).

Pooling rounding (`pooling`):
- "port": the port's arithmetic: floor rounding everywhere, pool5 padded by (0, 1, 1).
- "caffe": the original Caffe C3D: ceil rounding (a last, partial window is kept), no padding.
Both turn a 16x112x112 clip into a 512 x 1 x 4 x 4 pool5 map (flatten 8192), but the pool5
windows are shifted by one cell between them ([-1, 0], [1, 2], ... against [0, 1], [2, 3], ...).
The weights were trained in Caffe; "port" reproduces the port's own outputs exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from vidseg_cli.models.common import ModelInputError, check_video_input, conv3d_layout, scaled
from vidseg_cli.models.registry import MODELS

# Output channels of conv1, conv2, conv3a, conv3b, conv4a, conv4b, conv5a, conv5b (width 1.0).
C3D_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
C3D_CONV_NAMES = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
C3D_FC = 4096
# The input the fully connected layers were made for: frames x height x width.
C3D_CLIP = (16, 112, 112)
POOLINGS = ("port", "caffe")


def c3d_pools(pooling: str) -> list[nn.MaxPool3d]:
    """pool1..pool5 for a pooling mode (see the module docstring)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    ceil = pooling == "caffe"
    pools = [nn.MaxPool3d((1, 2, 2), (1, 2, 2), ceil_mode=ceil)]
    pools += [nn.MaxPool3d(2, 2, ceil_mode=ceil) for _ in range(3)]
    pad5 = (0, 1, 1) if pooling == "port" else 0
    pools.append(nn.MaxPool3d(2, 2, padding=pad5, ceil_mode=ceil))
    return pools


class C3D(nn.Module):
    """C3D classifier with a width multiplier; `features()` gives fc7 (extract-features' c3d backbone)."""

    def __init__(
        self,
        num_classes: int = 487,  # fc8 outputs: 487 Sports-1M, 2 for S-CNN's proposal net, K+1
        width: float = 1.0,  # channel multiplier; 1.0 is the real C3D (64 ... 512, fc 4096)
        pooling: str = "port",  # "port" (pool5 padding) or "caffe" (ceil rounding)
        dropout: float = 0.5,  # after fc6 and fc7 (C3D)
        in_channels: int = 3,  # RGB
    ):
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.pooling = pooling
        self.in_channels = in_channels
        chans = [scaled(c, width) for c in C3D_CHANNELS]
        fc = scaled(C3D_FC, width)
        c_in = in_channels
        for name, c in zip(C3D_CONV_NAMES, chans):
            setattr(self, name, nn.Conv3d(c_in, c, kernel_size=3, padding=1))
            c_in = c
        for i, p in enumerate(c3d_pools(pooling), start=1):
            setattr(self, f"pool{i}", p)
        self.flat_size = chans[-1] * 1 * 4 * 4  # pool5 of a 16x112x112 clip: C x 1 x 4 x 4
        self.fc6 = nn.Linear(self.flat_size, fc)
        self.fc7 = nn.Linear(fc, fc)
        self.fc8 = nn.Linear(fc, num_classes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = fc

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 .. pool5. x: B x 3 x T x H x W -> B x 512w x T/16 x H/32 x W/32 (rounded)."""
        x = self.pool1(self.relu(self.conv1(conv3d_layout(x))))
        x = self.pool2(self.relu(self.conv2(x)))
        x = self.pool3(self.relu(self.conv3b(self.relu(self.conv3a(x)))))
        x = self.pool4(self.relu(self.conv4b(self.relu(self.conv4a(x)))))
        x = self.pool5(self.relu(self.conv5b(self.relu(self.conv5a(x)))))
        return x

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        check_video_input(x, "c3d", self.in_channels, (1, 1, 1))
        h = self.trunk(x)  # B x C x 1 x 4 x 4 for a 16x112x112 clip
        if h[0].numel() != self.flat_size:
            raise ModelInputError(
                f"c3d takes {C3D_CLIP[0]}x{C3D_CLIP[1]}x{C3D_CLIP[2]} clips (pool5 must be "
                f"{h.shape[1]} x 1 x 4 x 4); a {'x'.join(map(str, x.shape[2:]))} clip gives "
                f"pool5 {' x '.join(map(str, h.shape[1:]))}"
            )
        # Channel-major flatten, as the port's view(-1, 8192): index = c*16 + h*4 + w.
        return h.flatten(1)  # B x 8192w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 activations after ReLU (dropout is active only in training). B x 4096w."""
        h = self.dropout(self.relu(self.fc6(self._flatten(x))))
        return self.relu(self.fc7(h))

    forward_features = features  # the name every backbone answers to

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (the port's forward ends in a softmax; ours leaves it to the loss)."""
        return self.fc8(self.dropout(self.features(x)))  # B x num_classes


MODELS.register("c3d", C3D)
