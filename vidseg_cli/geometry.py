"""Segment and box geometry, one home for every layer: temporal IoU of [start, end)
segments, and boxes around masks with their IoU.

The scorers' temporal IoU (metrics/temporal.py) is not this one: it replicates the
official scorers' floating-point operations so that their figures match exactly.
"""

from __future__ import annotations

import numpy as np


# -- segments: half-open [start, end) intervals -----------------------------------------
def tiou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Temporal IoU of one [start, end) segment against (N, 2) segments."""
    inter = np.clip(np.minimum(segment[1], others[:, 1]) - np.maximum(segment[0], others[:, 0]), 0, None)
    union = (segment[1] - segment[0]) + (others[:, 1] - others[:, 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)



def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal IoU of every [start, end) in a (N, 2) with every one in b (M, 2): (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 2)
    b = np.asarray(b, np.float64).reshape(1, -1, 2)
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# -- boxes: [x1, y1, x2, y2] in inclusive pixel coordinates ------------------------------
def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) masks -> (T, 4) float boxes [x1, y1, x2, y2], the tightest rectangle
    around each frame's foreground in inclusive pixel coordinates; NaN rows for empty
    frames."""
    m = np.asarray(masks) > 0
    if m.ndim == 2:
        m = m[None]
    t = m.shape[0]
    cols = m.any(axis=1)  # T x W
    rows = m.any(axis=2)  # T x H
    has = cols.any(axis=1)
    boxes = np.full((t, 4), np.nan)
    w, h = cols.shape[1], rows.shape[1]
    boxes[has, 0] = np.argmax(cols[has], axis=1)
    boxes[has, 2] = w - 1 - np.argmax(cols[has, ::-1], axis=1)
    boxes[has, 1] = np.argmax(rows[has], axis=1)
    boxes[has, 3] = h - 1 - np.argmax(rows[has, ::-1], axis=1)
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of (N, 4) inclusive-pixel boxes (areas count pixels: x2 - x1 + 1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a + area_b - inter)
