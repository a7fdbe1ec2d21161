"""FSN grouping (FSN §4.2): consecutive frames above a threshold become candidate segments
scored by their mean probability; NMS then removes the duplicates across thresholds."""

from __future__ import annotations

import numpy as np

from vidseg_cli.stages.nms import nms_per_class

# FSN §4.2: thresholds 0.0, 0.1, ..., 0.9.
FSN_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))


def runs_above(values: np.ndarray, threshold: float) -> np.ndarray:
    """(N, 2) [start, end) runs of consecutive indices with values > threshold."""
    above = np.concatenate([[False], np.asarray(values) > threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    return edges.reshape(-1, 2)


def group_frames(
    probs: np.ndarray,
    thresholds: tuple[float, ...] = FSN_THRESHOLDS,
    background: int | None = 0,
    nms_iou: float = 0.4,
    top_k: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections from (T, C) frame probabilities: (segments (N,2) frames, labels, scores).

    Every class but `background`, every threshold: runs of frames whose probability is
    above the threshold, scored by the mean probability over the run; then class-aware
    NMS at `nms_iou` (FSN evaluates at tIoU 0.5 and uses 0.5 - 0.1 for NMS).
    """
    probs = np.asarray(probs, dtype=np.float64)  # T x C
    segs, labs, scs = [], [], []
    csum = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])  # (T+1) x C
    for c in range(probs.shape[1]):
        if c == background:
            continue
        for th in thresholds:
            r = runs_above(probs[:, c], th)
            if r.size == 0:
                continue
            mean = (csum[r[:, 1], c] - csum[r[:, 0], c]) / (r[:, 1] - r[:, 0])
            segs.append(r)
            labs.append(np.full(len(r), c))
            scs.append(mean)
    if not segs:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0)
    seg = np.concatenate(segs).astype(np.float64)
    lab = np.concatenate(labs).astype(np.int64)
    sc = np.concatenate(scs)
    # The same run found at several thresholds is one candidate, not several.
    key = np.unique(np.column_stack([seg, lab]), axis=0, return_index=True)[1]
    key.sort()
    seg, lab, sc = seg[key], lab[key], sc[key]
    keep = nms_per_class(seg, lab, sc, nms_iou, top_k)
    return seg[keep], lab[keep], sc[keep]
