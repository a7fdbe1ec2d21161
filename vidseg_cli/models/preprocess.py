"""How video frames become a network input: the one home of preprocessing.

- Mean/std on the 0..255 scale: the C3D Sports-1M port takes RGB 0..255 with nothing
  subtracted (docs/models.md); torchvision's video models take 0..1 RGB normalised with
  the Kinetics mean/std; torchvision's image models (the FSN backbones) the ImageNet ones;
  the synthetic recipes' models, trained from scratch, 0..255 centred on 127.5
  (`CENTRED_PREPROCESS`).
- `Preprocess`: what a 3DFCN / Sep3D checkpoint records as `preprocess` (train/segment.py
  writes it and cuts its training clips with it, segment-3d applies it): mean/std,
  `short_side` (the shorter side the model was trained at), `clip_len` (Sep3D's clip),
  `context` (3DFCN's mirrored context).
- `WindowSpec`: how an S-CNN window becomes its 16-frame clip (S-CNN §3.1), recorded in
  the S-CNN checkpoint config.
- Frame operations: `resize_frames` (size as (h, w)), `normalize`, `pad_reflect`,
  `network_size`, `clip_starts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError
from vidseg_cli.stages.windows import CLIP_FRAMES

C3D_PORT_PREPROCESS = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
KINETICS_PREPROCESS = {
    "mean": [0.43216 * 255, 0.394666 * 255, 0.37645 * 255],
    "std": [0.22803 * 255, 0.22145 * 255, 0.216989 * 255],
}
# ours, for the synthetic recipes' models trained from scratch (train/segment.py)
CENTRED_PREPROCESS = {"mean": [127.5, 127.5, 127.5], "std": [64.0, 64.0, 64.0]}
IMAGENET_RGB_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255  # torchvision order (RGB)
IMAGENET_RGB_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def default_preprocess(model: str) -> dict[str, Any]:
    """What a checkpoint of `model` without a `preprocess` entry is run with."""
    base = KINETICS_PREPROCESS if model == "sep3d" else C3D_PORT_PREPROCESS
    return {**base, "short_side": None, "clip_len": 8 if model == "sep3d" else 0}


@dataclass(frozen=True)
class Preprocess:
    """A segmentation model's preprocessing, as its checkpoint records it."""

    mean: tuple[float, ...]  # per RGB channel, 0..255 scale
    std: tuple[float, ...]
    short_side: int | None = None  # frames resized so the shorter side is this; None = as is
    clip_len: int = 0  # Sep3D: frames per clip; 0 = the whole video
    context: tuple[int, ...] | None = None  # 3DFCN: mirrored frames, rows, columns around the video

    @classmethod
    def from_record(cls, record: Mapping[str, Any], model: str) -> Preprocess:
        """The record merged over `default_preprocess(model)`."""
        r = {**default_preprocess(model), **record}
        ctx = r.get("context")
        return cls(tuple(r["mean"]), tuple(r["std"]), r["short_side"], r["clip_len"],
                   tuple(ctx) if ctx is not None else None)

    @property
    def padding(self) -> tuple[int, int, int]:
        """`context` as (frames, rows, columns) of ints; (0, 0, 0) when there is none."""
        c = self.context or (0, 0, 0)
        return int(c[0]), int(c[1]), int(c[2])

    def record(self) -> dict[str, Any]:
        """The checkpoint's `preprocess` entry (plain JSON data; `context` only when set)."""
        out = {"mean": list(self.mean), "std": list(self.std), "short_side": self.short_side,
               "clip_len": self.clip_len}
        if self.context is not None:
            out["context"] = list(self.context)
        return out


def check_record(given: Any, path: Any) -> dict[str, Any]:
    """A checkpoint's `preprocess` entry ({} when absent), or an InputError naming `path`."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InputError(path, "checkpoint 'preprocess' is not a dict")
    for key in ("mean", "std"):
        if key in given and not (isinstance(given[key], list) and len(given[key]) == 3):
            raise InputError(path, f"checkpoint preprocess '{key}' should be 3 numbers, found {given[key]!r}")
    return given


# -- S-CNN windows (§3.1) ----------------------------------------------------------------------
@dataclass(frozen=True)
class WindowSpec:
    """Every frame is resized to `frame_size` and a centre crop of `crop_size` is taken; a
    window becomes `clip_frames` frames sampled uniformly from it."""

    frame_size: tuple[int, int] = (171, 128)  # W x H every frame is resized to (S-CNN §3.1)
    crop_size: tuple[int, int] = (112, 112)  # H x W of the centre crop (C3D's input)
    clip_frames: int = CLIP_FRAMES  # frames sampled uniformly from each window

    def __post_init__(self):
        (fw, fh), (ch, cw) = self.frame_size, self.crop_size
        if ch > fh or cw > fw:
            raise ValueError(f"crop {ch}x{cw} (HxW) is larger than the frame size {fw}x{fh} (WxH)")

    @property
    def frame_hw(self) -> tuple[int, int]:
        """`frame_size` as (h, w), the order `resize_frames` takes."""
        return self.frame_size[1], self.frame_size[0]

    def crop_offset(self) -> tuple[int, int]:
        """(y0, x0) of the centre crop."""
        (fw, fh), (ch, cw) = self.frame_size, self.crop_size
        return (fh - ch) // 2, (fw - cw) // 2


# -- frame operations ----------------------------------------------------------------------------
def scale_for(height: int, width: int, short_side: int | None) -> float:
    """The resize factor that brings the shorter side to `short_side` (1.0 when None)."""
    return 1.0 if not short_side else short_side / min(height, width)


def network_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(h, w) of a height x width frame resized for the network (`scale_for`)."""
    f = scale_for(height, width, short_side)
    return max(1, int(round(height * f))), max(1, int(round(width * f)))


def clip_starts(num_frames: int, clip_len: int, stride: int) -> list[int]:
    """First frames of clips of `clip_len` (<= num_frames) every `stride` frames, plus one
    ending on the last frame, so every frame is covered."""
    starts = list(range(0, num_frames - clip_len + 1, max(1, stride)))
    if starts[-1] != num_frames - clip_len:
        starts.append(num_frames - clip_len)
    return starts


def resize_frames(frames: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """T x H x W (x C) -> T x h x w (x C) for size = (h, w), per frame with OpenCV (area
    when shrinking, linear otherwise; nearest for labels). Frames already of that size come
    back as they are (made contiguous)."""
    import cv2

    h, w = size
    if frames.shape[1:3] == (h, w):
        return np.ascontiguousarray(frames)
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if h * w < frames.shape[1] * frames.shape[2] else cv2.INTER_LINEAR
    out = np.empty((len(frames), h, w, *frames.shape[3:]), frames.dtype)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (w, h), interpolation=interp)
    return out


def normalize(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """T x H x W x 3 uint8 -> a float32 tensor 3 x T x H x W, (x - mean) / std per channel
    (mean and std on the 0..255 scale)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()  # 3 x T x H x W
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    return (x - m) / s


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices mirrored into [0, n) about the end elements (numpy's 'reflect' padding,
    any distance): -1 -> 1, n -> n - 2."""
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def pad_reflect(frames: np.ndarray, context: Sequence[int]) -> np.ndarray:
    """T x H x W x ... frames with `context` = (t, y, x) mirrored frames, rows and columns
    added on both sides."""
    ct, cy, cx = (int(c) for c in context)
    t, h, w = frames.shape[:3]
    ti = reflect_index(np.arange(-ct, t + ct), t)
    yi = reflect_index(np.arange(-cy, h + cy), h)
    xi = reflect_index(np.arange(-cx, w + cx), w)
    return frames[ti][:, yi][:, :, xi]
