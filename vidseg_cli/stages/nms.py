"""Temporal non-maximum suppression: the one every localization method uses (S-CNN §3.3,
FSN §4.2). Segments are half-open [start, end) intervals in frames."""

from __future__ import annotations

import numpy as np

from vidseg_cli.geometry import tiou


def nms(segments: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int | None = None) -> np.ndarray:
    """Greedy NMS: indices of kept segments, by descending score.

    A segment is dropped when its tIoU with an already kept, higher-scored segment is
    greater than `iou_threshold`. Equal scores keep their input order (stable sort), so
    the result does not depend on the sort algorithm.
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if top_k is not None and len(keep) >= top_k:
            break
        rest = order[1:]
        order = rest[tiou(segments[i], segments[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def nms_per_class(
    segments: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    top_k: int | None = None,
) -> np.ndarray:
    """Class-aware NMS: segments of different classes never suppress each other.

    Returns kept indices sorted by descending score (stable); `top_k` caps the total.
    """
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    kept = [np.flatnonzero(labels == c)[nms(segments[labels == c], scores[labels == c], iou_threshold)]
            for c in np.unique(labels)]
    if not kept:
        return np.zeros(0, dtype=np.int64)
    idx = np.concatenate(kept)
    idx = idx[np.lexsort((idx, -scores[idx]))]  # by score, ties by input order
    return idx[:top_k] if top_k is not None else idx
