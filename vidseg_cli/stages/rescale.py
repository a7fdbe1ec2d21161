"""Bringing per-pixel predictions made on resized frames (`extract-frames --short-side N`
or `--size WxH`) back to the size of the source: nearest neighbour for class indices,
bilinear for posteriors (before their argmax)."""

from __future__ import annotations

import numpy as np

__all__ = ["resize_labels", "resize_probs"]


def resize_labels(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, H', W') class indices -> (T, H, W), nearest neighbour (pixel centres aligned)."""
    import cv2

    out = np.empty((masks.shape[0], *size), dtype=masks.dtype)
    for i, m in enumerate(masks):
        out[i] = cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return out


def resize_probs(p: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H', W') posteriors -> (C, H, W), bilinear (pixel centres aligned)."""
    import cv2

    c = p.shape[0]
    out = np.empty((c, *size), dtype=np.float32)
    for lo in range(0, c, 256):  # OpenCV images hold at most 512 channels
        chunk = np.ascontiguousarray(np.moveaxis(p[lo : lo + 256], 0, 2), dtype=np.float32)
        up = cv2.resize(chunk, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        out[lo : lo + 256] = up.reshape(size[0], size[1], -1).transpose(2, 0, 1)
    return out
