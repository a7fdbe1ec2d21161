"""FSN grouping (FSN §4.2): consecutive frames above a threshold become candidate segments
scored by their mean probability; NMS then removes the duplicates across thresholds.

`score="contrast"` scores a run instead by its mean minus the mean of the frames just
outside it (a quarter of its length on each side): the outer-inner contrast of weakly
supervised localizers (AutoLoc, Shou et al. 2018; used by later WTAL methods). WFSN's
scores have no background class (§3.4), so a softmax over the K actions is high for
*some* action on every frame: a run's mean says how confident it is, not whether it
stands out from its surroundings, and long runs over flat scores come out on top. The
contrast ranks runs that rise above their neighbourhood first; a run with no frames
outside it (the whole video) has no contrast and scores 0.
"""

from __future__ import annotations

import numpy as np

from vidseg_cli.stages.nms import nms_per_class

# FSN §4.2: thresholds 0.0, 0.1, ..., 0.9.
FSN_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))
SEGMENT_SCORES = ("mean", "contrast")
OUTER_FRACTION = 0.25  # the outer region on each side, as a fraction of the run (AutoLoc)


def runs_above(values: np.ndarray, threshold: float) -> np.ndarray:
    """(N, 2) [start, end) runs of consecutive indices with values > threshold."""
    above = np.concatenate([[False], np.asarray(values) > threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    return edges.reshape(-1, 2)


def run_scores(csum: np.ndarray, runs: np.ndarray, score: str = "mean",
               outer: float = OUTER_FRACTION) -> np.ndarray:
    """Scores of (N, 2) [start, end) runs of one class, from the cumulative sum of its frame
    scores (`csum`, T+1 values starting at 0): the mean inside ("mean", FSN §4.2) or the
    mean inside minus the mean over up to round(outer * length) frames on each side
    ("contrast"; module docstring)."""
    a, b = runs[:, 0], runs[:, 1]
    inner = (csum[b] - csum[a]) / (b - a)
    if score == "mean":
        return inner
    if score != "contrast":
        raise ValueError(f"score must be one of {SEGMENT_SCORES}, got {score!r}")
    T = len(csum) - 1
    L = np.maximum(1, np.rint(outer * (b - a)).astype(np.int64))
    a0, b0 = np.maximum(0, a - L), np.minimum(T, b + L)
    n = (a - a0) + (b0 - b)
    out = np.divide((csum[a] - csum[a0]) + (csum[b0] - csum[b]), n, out=inner.copy(), where=n > 0)
    return inner - out


def group_frames(
    probs: np.ndarray,
    thresholds: tuple[float, ...] = FSN_THRESHOLDS,
    background: int | None = 0,
    nms_iou: float = 0.4,
    top_k: int | None = None,
    score: str = "mean",
    classes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections from (T, C) frame probabilities: (segments (N,2) frames, labels, scores).

    Every class but `background` (and, when `classes` is given, only those columns), every
    threshold: runs of frames whose probability is above the threshold, scored by
    `run_scores` (`score`: "mean" as FSN §4.2, or "contrast"); then class-aware NMS at
    `nms_iou` (FSN evaluates at tIoU 0.5 and uses 0.5 - 0.1 for NMS).
    """
    probs = np.asarray(probs, dtype=np.float64)  # T x C
    segs, labs, scs = [], [], []
    csum = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])  # (T+1) x C
    wanted = range(probs.shape[1]) if classes is None else sorted(int(c) for c in classes)
    for c in wanted:
        if c == background:
            continue
        for th in thresholds:
            r = runs_above(probs[:, c], th)
            if r.size == 0:
                continue
            segs.append(r)
            labs.append(np.full(len(r), c))
            scs.append(run_scores(csum[:, c], r, score))
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
