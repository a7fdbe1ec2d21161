"""Small pieces the models share: width scaling, input-size errors, bilinear kernels."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ModelInputError(ValueError):
    """An input tensor a model cannot take (too small, wrong channel count). One line.

    The CLI turns it into `InputError(<file>, str(err))`, since only the CLI knows the file.
    """


def scaled(channels: int, width: float) -> int:
    """`channels` times the width multiplier, rounded, at least 1 (width 1.0: unchanged)."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(1, int(round(channels * width)))


def triple(v: int | Sequence[int]) -> tuple[int, int, int]:
    """An int or a 3-sequence (T, H, W) as a 3-tuple (JSON configs give lists)."""
    if isinstance(v, int):
        return (v, v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 3:
        raise ValueError(f"expected one int or three (T, H, W), got {v!r}")
    return t  # type: ignore[return-value]


def conv3d_layout(x: torch.Tensor) -> torch.Tensor:
    """x (B x C x T x H x W) in the memory layout conv3d runs fastest in on a CPU:
    channels-last, which lets oneDNN skip the im2col path it takes for narrow layers
    (training steps of the synthetic recipes 1.2-1.5x faster, Sep3D inference 1.7x:
    benchmarks/segment3d/bench_layout.py). Convolutions keep the layout, so converting the
    input once is enough. On other devices x is returned as it is (not measured there)."""
    if x.device.type == "cpu" and x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def check_video_input(x: torch.Tensor, model: str, in_channels: int, min_thw: Sequence[int]) -> None:
    """Raise ModelInputError unless x is B x C x T x H x W with C = in_channels and T, H, W
    at least `min_thw`."""
    if x.dim() != 5:
        raise ModelInputError(f"{model} takes B x C x T x H x W clips, got a {x.dim()}-d tensor")
    if x.shape[1] != in_channels:
        raise ModelInputError(f"{model} takes {in_channels} input channels, got {x.shape[1]}")
    t, h, w = x.shape[2:]
    mt, mh, mw = min_thw
    if t < mt or h < mh or w < mw:
        raise ModelInputError(
            f"{model} needs clips of at least {mt} frames of {mh}x{mw} pixels "
            f"(T x H x W >= {mt}x{mh}x{mw}), got {t}x{h}x{w}"
        )


def bilinear_kernel_1d(size: int) -> torch.Tensor:
    """The 1-D interpolation kernel of FCN's bilinear upsampling for a transposed conv
    of kernel `size` = 2 * stride (Long et al., used by 3DFCN §3.3 for its DeConv)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    x = torch.arange(size, dtype=torch.float64)
    return (1 - (x - center).abs() / factor).float()


def bilinear_kernel_3d(size: Sequence[int]) -> torch.Tensor:
    """Separable product of 1-D kernels: kT x kH x kW trilinear interpolation weights."""
    kt, kh, kw = (bilinear_kernel_1d(s) for s in size)
    return kt[:, None, None] * kh[None, :, None] * kw[None, None, :]  # kT x kH x kW
