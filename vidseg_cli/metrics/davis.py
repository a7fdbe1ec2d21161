"""DAVIS region similarity J and contour accuracy F, with mean / recall / decay.

Computed as the public DAVIS 2017 scorer (davisvideochallenge/davis2017-evaluation)
computes them for a single-object sequence (the DAVIS 2016 setting):

- J: per frame, |P & G| / |P | G|; a frame where both masks are empty scores 1.
- F: per frame, the F-measure of boundary precision and recall. Boundaries are the DAVIS
  `seg2bmap` maps (a pixel is a boundary pixel when it differs from its right, lower or
  lower-right neighbour; the last row and column compare along the border only, and the
  bottom-right pixel is never one). A boundary pixel of one mask is matched when the other
  mask's boundary, dilated by a disk of radius ceil(bound_th * image diagonal) pixels
  (bound_th = 0.008; the disk is {x^2 + y^2 <= r^2}), covers it. Empty boundaries: none in
  the prediction but some in the truth gives P=1, R=0; the reverse P=0, R=1; both empty 1.
- Statistics per sequence (`db_statistics`): mean = nanmean over frames; recall = the
  fraction of frames scoring > 0.5; decay = nanmean of the first bin minus nanmean of the
  fourth of four bins, bin edges round(linspace(1, n, 5) + 1e-10) - 1, bin i holding frames
  edges[i] .. edges[i+1] inclusive (neighbouring bins share their edge frame).
- Frames: semi-supervised excludes the first and the last frame (the first is given, the
  last has no ground truth in DAVIS 2017); unsupervised scores every frame.
- Overall: the mean over sequences of each per-sequence statistic.

T (temporal stability) is not provided: see docs/evaluate_pixel.md.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "BOUND_TH",
    "TASKS",
    "boundary_f",
    "boundary_radius",
    "davis_statistics",
    "decay_bins",
    "disk",
    "evaluate_sequence",
    "jaccard",
    "scored_frames",
    "seg2bmap",
    "summarize",
]

BOUND_TH = 0.008
TASKS = ("unsupervised", "semi-supervised")


def jaccard(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-frame region similarity of (T, H, W) (or (H, W)) masks; empty-vs-empty is 1."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    single = gt.ndim == 2
    g, p = (gt[None], pred[None]) if single else (gt, pred)
    inter = _count(g & p)
    union = _count(g | p)
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(union == 0, 1.0, inter / np.maximum(union, 1)).astype(np.float64)
    return j[0] if single else j


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """DAVIS boundary map of binary masks (..., H, W): one-pixel-wide boundaries, offset
    half a pixel towards the origin. Vectorised over leading axes.

    A pixel is on the boundary when it differs from its right, lower or lower-right
    neighbour; in the last row only the right neighbour counts, in the last column only
    the lower one (outside the image counts as background), and the bottom-right pixel
    never is.
    """
    s = np.asarray(seg).astype(bool)
    b = np.zeros_like(s)
    x = s[..., :-1, :-1]
    inner = x ^ s[..., :-1, 1:]
    inner |= x ^ s[..., 1:, :-1]
    inner |= x ^ s[..., 1:, 1:]
    b[..., :-1, :-1] = inner
    b[..., -1, :-1] = s[..., -1, :-1] ^ s[..., -1, 1:]
    b[..., :-1, -1] = s[..., :-1, -1] ^ s[..., 1:, -1]
    return b


def _count(x: np.ndarray) -> np.ndarray:
    """Nonzero pixels per frame of (T, H, W) (a per-frame count_nonzero is several times
    faster than count_nonzero with an axis)."""
    return np.fromiter((np.count_nonzero(f) for f in x), dtype=np.int64, count=x.shape[0])


def disk(radius: int) -> np.ndarray:
    """The disk structuring element {(x, y): x^2 + y^2 <= r^2}, (2r+1, 2r+1) uint8."""
    r = int(radius)
    ax = np.arange(-r, r + 1)
    return ((ax[None, :] ** 2 + ax[:, None] ** 2) <= r * r).astype(np.uint8)


def boundary_radius(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Matching tolerance in pixels: bound_th itself when >= 1, else
    ceil(bound_th * sqrt(H^2 + W^2)) (8 for 854x480)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(height, width)))


def _frame_counts(
    g: np.ndarray, p: np.ndarray, kernel: np.ndarray
) -> tuple[int, int, int, int]:
    """(boundary pixels of g, of p, p's matched, g's matched) for two (h, w) masks."""
    import cv2

    gb = seg2bmap(g)
    pb = seg2bmap(p)
    gd = cv2.dilate(gb.view(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    pd = cv2.dilate(pb.view(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (
        np.count_nonzero(gb),
        np.count_nonzero(pb),
        np.count_nonzero(pb & gd.view(bool)),  # prediction boundary near the truth's
        np.count_nonzero(gb & pd.view(bool)),  # truth boundary near the prediction's
    )


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """Per-frame contour accuracy F of (T, H, W) (or (H, W)) binary masks.

    Each frame is worked on inside the bounding box of both masks grown by radius + 1
    pixels (clipped to the image). That gives the same counts as the whole frame: a
    boundary pixel lies at most one pixel above/left of a mask pixel, a dilation reaches
    `radius` pixels, and where the box stops short of the image's last row or column its
    own last row/column is empty, as the image's pixels there are.
    """
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    single = gt.ndim == 2
    if single:
        gt, pred = gt[None], pred[None]
    t, h, w = gt.shape
    r = boundary_radius(h, w, bound_th)
    kernel = disk(r)
    both = gt | pred
    rows = both.any(axis=2)  # T x H
    cols = both.any(axis=1)  # T x W
    counts = np.zeros((t, 4), dtype=np.int64)  # n_g, n_p, p_hit, g_hit
    m = r + 1
    for i in range(t):
        ry = np.flatnonzero(rows[i])
        if ry.size == 0:
            continue  # both empty: no boundaries
        cx = np.flatnonzero(cols[i])
        y0, y1 = max(ry[0] - m, 0), min(ry[-1] + m + 1, h)
        x0, x1 = max(cx[0] - m, 0), min(cx[-1] + m + 1, w)
        counts[i] = _frame_counts(gt[i, y0:y1, x0:x1], pred[i, y0:y1, x0:x1], kernel)
    n_g, n_p, p_hit, g_hit = counts.T.astype(np.float64)
    # An empty boundary scores 1 on its own side; the other side then scores 0 by itself
    # (nothing to match), giving DAVIS's P=1,R=0 / P=0,R=1 / both-empty F=1 cases.
    precision = np.where(n_p > 0, p_hit / np.maximum(n_p, 1), 1.0)
    recall = np.where(n_g > 0, g_hit / np.maximum(n_g, 1), 1.0)
    s = precision + recall
    f = np.where(s > 0, 2 * precision * recall / np.where(s > 0, s, 1.0), 0.0)
    return f[0] if single else f


def _full_frame_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of one (H, W) frame without cropping: the plain definition, kept to check the
    cropped path against (tests)."""
    r = boundary_radius(gt.shape[0], gt.shape[1], bound_th)
    n_g, n_p, p_hit, g_hit = _frame_counts(gt.astype(bool), pred.astype(bool), disk(r))
    precision = p_hit / n_p if n_p else 1.0
    recall = g_hit / n_g if n_g else 1.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def decay_bins(n: int) -> list[tuple[int, int]]:
    """The four decay bins over n frames as [start, stop) index pairs (DAVIS rule: edges
    round(linspace(1, n, 5) + 1e-10) - 1, each bin inclusive of its right edge)."""
    edges = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)
    return [(int(edges[i]), int(edges[i + 1]) + 1) for i in range(4)]


def davis_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame values, NaN-ignoring, as DAVIS's db_statistics."""
    v = np.asarray(values, dtype=np.float64).ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v)) if v.size else float("nan")
        recall = float(np.nanmean(v > 0.5)) if v.size else float("nan")
        if v.size:
            bins = [v[a:b] for a, b in decay_bins(v.size)]
            decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
        else:
            decay = float("nan")
    return mean, recall, decay


def scored_frames(num_frames: int, task: str) -> slice:
    """Which frames a task scores: all (unsupervised) or all but the first and the last
    (semi-supervised)."""
    if task == "unsupervised":
        return slice(0, num_frames)
    if task == "semi-supervised":
        return slice(1, max(num_frames - 1, 1))
    raise ValueError(f"unknown DAVIS task '{task}' (known: {', '.join(TASKS)})")


def evaluate_sequence(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> dict:
    """J and F of one sequence's (T, H, W) masks, over the frames given (select the task's
    frames with `scored_frames` first).

    Returns {"J": {"mean", "recall", "decay"}, "F": {...}, "frames": n, "J_per_frame": [...],
    "F_per_frame": [...]}.
    """
    j = jaccard(gt, pred)
    f = boundary_f(gt, pred, bound_th)
    jm, jr, jd = davis_statistics(j)
    fm, fr, fd = davis_statistics(f)
    return {
        "J": {"mean": jm, "recall": jr, "decay": jd},
        "F": {"mean": fm, "recall": fr, "decay": fd},
        "frames": int(j.size),
        "J_per_frame": j.tolist(),
        "F_per_frame": f.tolist(),
    }


def summarize(per_sequence: dict[str, dict]) -> dict:
    """Overall statistics: for each of J and F, the mean over sequences of each per-sequence
    statistic (as the DAVIS 2017 scorer averages its per-object lists); and J&F, the mean
    of J's and F's means."""
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for m in ("J", "F"):
            out[m] = {
                k: float(np.mean([s[m][k] for s in per_sequence.values()]))
                if per_sequence else float("nan")
                for k in ("mean", "recall", "decay")
            }
    out["J&F"] = (out["J"]["mean"] + out["F"]["mean"]) / 2
    return out
