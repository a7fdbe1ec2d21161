"""Bringing coarse per-pixel scores (`spatial_stride` > 1) back to frame resolution: the
one rule every consumer of a scores file (evaluate, crf-refine, hmm-smooth users) shares."""

from __future__ import annotations

import numpy as np


def upsample_probs(p: np.ndarray, stride: int, size: tuple[int, int]) -> np.ndarray:
    """(C, H', W') posteriors -> (C, H, W): bilinear by `stride` (cell centres at
    i*stride + (stride-1)/2, OpenCV's pixel-centre convention), cropped to `size`."""
    import cv2

    c, hh, ww = p.shape
    out = np.empty((c, hh * stride, ww * stride), dtype=np.float32)
    for lo in range(0, c, 256):  # OpenCV images hold at most 512 channels
        chunk = np.ascontiguousarray(np.moveaxis(p[lo : lo + 256], 0, 2), dtype=np.float32)
        up = cv2.resize(chunk, (ww * stride, hh * stride), interpolation=cv2.INTER_LINEAR)
        out[lo : lo + 256] = up.reshape(hh * stride, ww * stride, -1).transpose(2, 0, 1)
    return out[:, : size[0], : size[1]]
