"""3DFCN-32s and 3DFCN-8s (Yu, Wang, Wu: human action segmentation, §3.3-3.4).

32s (§3.3): C3D's conv1..pool5 with Caffe's ceil rounding, then fc6 and fc7 as convolutions
C(4096, 4, 1, 1, 1) and C(4096, 1, 1, 1, 1) (ReLU + dropout each), the class scoring layer
C(C, 1, 1, 1, 1) ("score", C3D's fc8) and DeConv(C, 64, 32, 32, 16): a transposed conv of
kernel 32 x 64 x 64 (T x H x W) and stride 16 x 32 x 32, initialized as trilinear
interpolation. A 40-frame 240x320 video gives a 3 x 5 x 7 class map (T x H x W; §3.3).

8s (§3.4): pool4 and pool5 get stride 1, conv5a/conv5b are dilated 2x and conv-fc6 4x,
so the class map is sampled 4x more densely in T, H and W (stride 4 x 8 x 8), and the
DeConv is 8 x 16 x 16 with stride 4 x 8 x 8. To keep every receptive field exactly as in
32s (§3.4: "the receptive field size should remain the same"), pool5 also samples its two
taps 2 cells apart (a dilated, "à trous" max pool); with it, 8s evaluated at every 4th
position equals 32s wherever no Caffe partial pooling window is involved (a test checks it).

How the class map relates to the input: class-map cell (t, y, x) is the C3D score of the
16 x 112 x 112 window that starts at frame s_t*t, row s_h*y, column s_w*x (s = 16 x 32 x 32
for 32s, 4 x 8 x 8 for 8s), exactly as a sliding-window C3D would place it, except that
inside a video pool5's last cell pools a full 2 x 2 of pool4 (C3D's 112-pixel clip has a
partial one there), so the cell sees 16 x 128 x 128 pixels. `forward` puts each cell at
the centre of what it sees (frame s_t*t + 7.5, pixel s*y + 63.5: `WINDOW_CENTER`), interpolates
between centres with the (learnable, bilinear-initialized) DeConv, and, for the border of
half a window that no centre covers, repeats the nearest cell (the class map is padded by
replicating its edge before the DeConv); the result is cropped to the input's T x H x W.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_cli.models.c3d import C3D_CHANNELS, C3D_CLIP, C3D_CONV_NAMES, C3D_FC
from vidseg_cli.models.common import bilinear_kernel_3d, check_video_input, conv3d_layout, scaled
from vidseg_cli.models.registry import MODELS

STRIDES = ("32s", "8s")
# Where class-map cell (0, 0, 0) looks: the centre of its receptive field, in input frames,
# rows and columns. In time it is the C3D clip's centre, 7.5. In space it is 63.5, not the
# 112-pixel clip's 55.5: pool5's fourth cell pools pool4 cells 6 and 7 (rows 96-127), which
# in C3D's own 112-pixel clip is Caffe's partial window over rows 96-111 only, but inside
# a video (fully convolutional) always covers both. Every layer before it is symmetric, so
# the receptive field is too (tests/models/test_c3d_fcn3d.py finds this centre from the
# input gradient). 8s keeps the same fields (§3.4), so the same centre.
WINDOW_CENTER = (7.5, 63.5, 63.5)


class FCN3D(nn.Module):
    """3D fully convolutional C3D with a trilinear DeConv to the input's size."""

    def __init__(
        self,
        num_classes: int = 2,  # C of C(C,1,1,1,1): background + actions
        stride: str = "32s",  # "32s" (§3.3) or "8s" (§3.4)
        width: float = 1.0,  # channel multiplier; 1.0 is the paper's (C3D's) widths
        dropout: float = 0.5,  # after conv-fc6 and conv-fc7 (§3.3)
        in_channels: int = 3,  # RGB
    ):
        super().__init__()
        if stride not in STRIDES:
            raise ValueError(f"stride must be one of {STRIDES}, got {stride!r}")
        self.num_classes = num_classes
        self.stride = stride
        self.width = width
        self.in_channels = in_channels
        dense = stride == "8s"
        chans = [scaled(c, width) for c in C3D_CHANNELS]
        fc = scaled(C3D_FC, width)
        c_in = in_channels
        for name, c in zip(C3D_CONV_NAMES, chans):
            d = 2 if dense and name.startswith("conv5") else 1  # §3.4: conv5a/b dilated 2x
            setattr(self, name, nn.Conv3d(c_in, c, kernel_size=3, padding=d, dilation=d))
            c_in = c
        # Caffe rounding (ceil) so the class map has the size §3.3 states.
        self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2), ceil_mode=True)
        self.pool2 = nn.MaxPool3d(2, 2, ceil_mode=True)
        self.pool3 = nn.MaxPool3d(2, 2, ceil_mode=True)
        if dense:  # §3.4: stride 1; pool5 taps 2 apart to keep its receptive field
            self.pool4 = nn.MaxPool3d(2, 1)
            self.pool5 = nn.MaxPool3d(2, 1, dilation=2)
        else:
            self.pool4 = nn.MaxPool3d(2, 2, ceil_mode=True)
            self.pool5 = nn.MaxPool3d(2, 2, ceil_mode=True)
        d6 = (1, 4, 4) if dense else 1  # §3.4: conv-fc6 dilated 4x (its T kernel is 1)
        self.fc6 = nn.Conv3d(chans[-1], fc, kernel_size=(1, 4, 4), dilation=d6)  # C(4096,4,1,1,1)
        self.fc7 = nn.Conv3d(fc, fc, kernel_size=1)  # C(4096,1,1,1,1)
        self.score = nn.Conv3d(fc, num_classes, kernel_size=1)  # C(C,1,1,1,1)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        # Class-map stride and the DeConv: kernel twice the stride (FCN's bilinear upsampling).
        self.out_stride = (4, 8, 8) if dense else (16, 32, 32)  # T, H, W
        kernel = tuple(2 * s for s in self.out_stride)  # 8x16x16 or 32x64x64
        self.upscore = nn.ConvTranspose3d(
            num_classes, num_classes, kernel_size=kernel, stride=self.out_stride, bias=False
        )
        self.reset_trunk()
        self.reset_upscore()
        # Window of input behind one class-map cell, and the centre of what the cell sees.
        self.window = C3D_CLIP
        self.window_center = WINDOW_CENTER

    def reset_trunk(self) -> None:
        """He initialization (fan-in, ReLU gain) and zero biases for every conv: C3D has no
        normalization layers, and PyTorch's default init shrinks the signal ~25x over its
        eleven layers, so a network trained from scratch (no `--init c3d.pickle`, as on the
        CPU recipe) starts with outputs that hardly depend on the input and learns nothing.
        Loading pretrained weights overwrites all of it."""
        for name in (*C3D_CONV_NAMES, "fc6", "fc7"):
            conv = getattr(self, name)
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.score.weight, std=0.01)
        nn.init.zeros_(self.score.bias)

    def reset_upscore(self) -> None:
        """DeConv weights = trilinear interpolation, class c to class c (3DFCN §3.3, FCN)."""
        k = bilinear_kernel_3d(self.upscore.kernel_size)  # kT x kH x kW
        with torch.no_grad():
            self.upscore.weight.zero_()
            for c in range(self.num_classes):
                self.upscore.weight[c, c] = k

    # -- sizes --------------------------------------------------------------------------
    def map_size(self, thw: tuple[int, int, int]) -> tuple[int, int, int]:
        """Class-map size T' x H' x W' for an input of T x H x W (0 where none fits)."""
        return tuple(self._map_len(n, dim) for dim, n in enumerate(thw))  # type: ignore[return-value]

    def _map_len(self, n: int, dim: int) -> int:
        def pool(n: int, k: int, s: int, d: int = 1, ceil: bool = False) -> int:
            span = d * (k - 1) + 1
            if n < span and not (ceil and n >= 1):
                return 0
            out = (math.ceil if ceil else math.floor)((n - span) / s) + 1
            if ceil and (out - 1) * s >= n:  # PyTorch and Caffe: last window starts inside
                out -= 1
            return max(out, 0)

        spatial = dim > 0
        n = pool(n, 2, 2, ceil=True) if spatial else n  # pool1 (1x2x2)
        n = pool(n, 2, 2, ceil=True)  # pool2
        n = pool(n, 2, 2, ceil=True)  # pool3
        if self.stride == "8s":
            n = pool(n, 2, 1)  # pool4
            n = pool(n, 2, 1, d=2)  # pool5
            return max(n - 12, 0) if spatial else n  # fc6: 4 taps, 4 apart
        n = pool(n, 2, 2, ceil=True)  # pool4
        n = pool(n, 2, 2, ceil=True)  # pool5
        return max(n - 3, 0) if spatial else n  # fc6: 4 taps

    @property
    def min_input(self) -> tuple[int, int, int]:
        """Smallest T x H x W that gives a class map of at least one cell."""
        return tuple(
            next(n for n in range(1, 4096) if self._map_len(n, dim) >= 1) for dim in range(3)
        )  # type: ignore[return-value]

    # -- forward ------------------------------------------------------------------------
    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits before the DeConv. x: B x 3 x T x H x W -> B x C x T' x H' x W'."""
        check_video_input(x, f"3dfcn-{self.stride}", self.in_channels, self.min_input)
        x = conv3d_layout(x)
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = self.pool3(self.relu(self.conv3b(self.relu(self.conv3a(x)))))
        x = self.pool4(self.relu(self.conv4b(self.relu(self.conv4a(x)))))
        x = self.pool5(self.relu(self.conv5b(self.relu(self.conv5a(x)))))
        x = self.dropout(self.relu(self.fc6(x)))  # B x 4096 x T' x H' x W'
        x = self.dropout(self.relu(self.fc7(x)))
        return self.score(x)  # B x C x T' x H' x W'

    def upsample(self, score: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        """DeConv the class map to an input of T x H x W, each cell at its window's centre
        (module docstring). score: B x C x T' x H' x W' -> B x C x T x H x W."""
        pads: list[tuple[int, int]] = []
        crops: list[int] = []
        for dim in range(3):
            s, c0, n, length = self.out_stride[dim], self.window_center[dim], score.shape[2 + dim], size[dim]
            # DeConv output o peaks on map cell j at o = s*j + s - 0.5; cell i sits at input
            # c0 + s*i. With q_lo cells of padding in front, input p = o - (s*q_lo - a).
            # Outputs s .. s*m - 1 (m padded cells) get two kernels each, i.e. are complete
            # interpolations; the crop must lie there.
            a = c0 - s + 0.5  # input position of DeConv output 0 when nothing is padded
            q_lo = max(0, math.ceil((a + s) / s))
            offset = int(round(s * q_lo - a))  # DeConv output of input position 0, >= s
            q_hi = max(0, math.ceil((offset + length) / s) - n - q_lo)
            pads.append((q_lo, q_hi))
            crops.append(offset)
        # F.pad takes the last dimension first.
        flat = [p for dim in (2, 1, 0) for p in pads[dim]]
        up = self.upscore(F.pad(score, flat, mode="replicate"))  # B x C x ~T x ~H x ~W
        (t0, h0, w0), (t, h, w) = crops, size
        return up[:, :, t0 : t0 + t, h0 : h0 + h, w0 : w0 + w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class logits at the input's size. B x 3 x T x H x W -> B x C x T x H x W."""
        return self.upsample(self.score_map(x), tuple(x.shape[2:]))


class FCN3D32s(FCN3D):
    """3DFCN-32s (§3.3); arguments as FCN3D."""

    def __init__(
        self, num_classes: int = 2, width: float = 1.0, dropout: float = 0.5, in_channels: int = 3
    ):
        super().__init__(
            num_classes=num_classes, stride="32s", width=width, dropout=dropout, in_channels=in_channels
        )


class FCN3D8s(FCN3D):
    """3DFCN-8s (§3.4); arguments as FCN3D."""

    def __init__(
        self, num_classes: int = 2, width: float = 1.0, dropout: float = 0.5, in_channels: int = 3
    ):
        super().__init__(
            num_classes=num_classes, stride="8s", width=width, dropout=dropout, in_channels=in_channels
        )


MODELS.register("3dfcn-32s", FCN3D32s)
MODELS.register("3dfcn-8s", FCN3D8s)
