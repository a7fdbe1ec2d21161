"""Frame-level action localization AP (FSN Table 1, following MultiTHUMOS and CDC): for
each class, every frame of the test set is ranked by its score for that class, a frame
is positive when its time falls inside a ground-truth segment of that class, and AP is
the area under the precision-recall curve. mAP averages the classes that have positive
frames.

AP = sum over distinct score thresholds of (recall step) x precision, so tied scores
form one step and the result does not depend on how ties are ordered (the same
definition as scikit-learn's average_precision_score).
"""

from __future__ import annotations

import numpy as np

__all__ = ["frame_average_precision", "rasterize"]


def rasterize(num_frames: int, fps: float, segments: np.ndarray, labels: np.ndarray,
              num_classes: int, times: np.ndarray | None = None) -> np.ndarray:
    """(T, C) bool: frame t is positive for class c when start <= time(t) < end for a
    segment of c; time(t) = times[t] if given, else t / fps (the frame's timestamp)."""
    t = np.asarray(times, np.float64) if times is not None else np.arange(num_frames) / float(fps)
    out = np.zeros((num_frames, num_classes), bool)
    seg = np.asarray(segments, np.float64).reshape(-1, 2)
    for (s, e), c in zip(seg, np.asarray(labels, np.int64).reshape(-1)):
        out[(t >= s) & (t < e), c] = True
    return out


def frame_average_precision(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """(C,) AP of each class from (N, C) scores and (N, C) bool positives over all frames;
    NaN for a class without positive frames."""
    scores = np.asarray(scores, np.float64)
    positives = np.asarray(positives, bool)
    n, c = scores.shape
    ap = np.full(c, np.nan)
    for k in range(c):
        npos = int(positives[:, k].sum())
        if npos == 0:
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        s, y = scores[order, k], positives[order, k]
        tp = np.cumsum(y, dtype=np.float64)
        # the last position of each run of equal scores closes a threshold
        last = np.r_[s[1:] != s[:-1], True]
        tp_t = tp[last]
        n_t = (np.flatnonzero(last) + 1).astype(np.float64)
        prec = tp_t / n_t
        rec = tp_t / npos
        ap[k] = float(np.sum(np.diff(np.r_[0.0, rec]) * prec))
    return ap
