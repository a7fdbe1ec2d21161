"""Segment-tube's training labels for clip windows (Segment-tube §2.1).

The paper says "We follow [13] to construct training data", i.e. S-CNN's rule: a window's
label by its highest temporal IoU with a ground-truth instance (> 0.7 positive, < 0.3
background). With 16- and 32-frame clips that rule almost never makes a positive: a
window inside a longer action has tIoU <= window / action length (a 16-frame window in a
40-frame action: 0.4, ignored). Here a window is labelled by coverage instead, the
fraction of its own frames inside ground truth:
- r_k = |window ∩ (instances of class k)| / |window|; max_k r_k > 0.7 -> that class;
- the fraction of the window inside any instance < 0.3 -> background (0);
- otherwise ignored (-1), masked out of the loss.
Overlapping or adjacent instances of one class count together, so a window across two
touching instances of the same class is positive. A trimmed video is one instance
covering all its frames, so every window is positive. Proposal targets: 1 for an action
window, 0 for background, -1 ignored.

The windows are §2.1's clips (`stages.segment_tube_temporal.clip_windows`: 16 and 32
frames, 75% overlap).
"""

from __future__ import annotations

import numpy as np

POSITIVE_COVERAGE = 0.7  # a class covers more of the window than this: positive
BACKGROUND_COVERAGE = 0.3  # actions cover less of the window than this: background

def _covered(windows: np.ndarray, segments: np.ndarray, num_frames: int) -> np.ndarray:
    """Frames of each window inside the union of `segments` (N,)."""
    inside = np.zeros(num_frames + 1, np.int64)
    for s, e in segments:
        inside[max(0, s):max(0, min(num_frames, e))] = 1
    csum = np.concatenate([[0], np.cumsum(inside)])
    return csum[windows[:, 1]] - csum[windows[:, 0]]


def coverage_labels(
    windows: np.ndarray,  # (N, 2) [start, end) clip windows, frames
    gt_segments: np.ndarray,  # (M, 2) [start, end) ground-truth instances, frames
    gt_labels: np.ndarray,  # (M,) their classes, 1..K
) -> tuple[np.ndarray, np.ndarray]:
    """Coverage labels of one video's windows (module docstring).

    Returns labels (N,) int64 (class, 0 background, -1 ignored) and coverage (N,) float64:
    the labelled class's r_k for positives, the fraction inside any instance otherwise.
    """
    windows = np.asarray(windows, np.int64).reshape(-1, 2)
    segs = np.round(np.asarray(gt_segments, np.float64).reshape(-1, 2)).astype(np.int64)
    gl = np.asarray(gt_labels, np.int64).reshape(-1)
    n = len(windows)
    if len(gl) != len(segs):
        raise ValueError(f"{len(segs)} ground-truth segments but {len(gl)} labels")
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    end = int(max(windows[:, 1].max(), segs[:, 1].max() if len(segs) else 0))
    length = (windows[:, 1] - windows[:, 0]).astype(np.float64)
    any_action = _covered(windows, segs, end) / length
    labels = np.full(n, -1, np.int64)
    cover = any_action.copy()
    labels[any_action < BACKGROUND_COVERAGE] = 0
    best = np.zeros(n, np.float64)
    for k in np.unique(gl):
        r = _covered(windows, segs[gl == k], end) / length  # r_k
        take = (r > POSITIVE_COVERAGE) & (r > best)
        labels[take], cover[take], best[take] = k, r[take], r[take]
    return labels, cover


def proposal_targets(labels: np.ndarray) -> np.ndarray:
    """Action (1) vs background (0) targets of the proposal network; ignored stays -1."""
    labels = np.asarray(labels, np.int64)
    return np.where(labels > 0, 1, labels).astype(np.int64)
