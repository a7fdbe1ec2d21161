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
    inter = np.count_nonzero(gt & pred, axis=(-2, -1))
    union = np.count_nonzero(gt | pred, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return j.astype(np.float64)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """DAVIS boundary map of binary masks (..., H, W): one-pixel-wide boundaries, offset
    half a pixel towards the origin. Vectorised over leading axes."""
    s = np.asarray(seg).astype(bool)
    right = np.zeros_like(s)
    down = np.zeros_like(s)
    diag = np.zeros_like(s)
    right[..., :, :-1] = s[..., :, 1:]
    down[..., :-1, :] = s[..., 1:, :]
    diag[..., :-1, :-1] = s[..., 1:, 1:]
    b = (s ^ right) | (s ^ down) | (s ^ diag)
    b[..., -1, :] = s[..., -1, :] ^ right[..., -1, :]
    b[..., :, -1] = s[..., :, -1] ^ down[..., :, -1]
    b[..., -1, -1] = False
    return b


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


def _dilate_frames(b: np.ndarray, radius: int) -> np.ndarray:
    """Dilate each (H, W) frame of (T, H, W) binary maps by disk(radius), in one OpenCV
    call: frames are stacked with `radius` empty rows between them so none bleeds into
    the next."""
    import cv2

    t, h, w = b.shape
    if t == 0:
        return b.copy()
    pitch = h + radius
    tall = np.zeros((t * pitch, w), dtype=np.uint8)
    tall.reshape(t, pitch, w)[:, :h, :] = b
    out = cv2.dilate(tall, disk(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(t, pitch, w)[:, :h, :].astype(bool)


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """Per-frame contour accuracy F of (T, H, W) (or (H, W)) binary masks."""
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    single = gt.ndim == 2
    if single:
        gt, pred = gt[None], pred[None]
    r = boundary_radius(gt.shape[1], gt.shape[2], bound_th)
    gb = seg2bmap(gt)  # T x H x W
    pb = seg2bmap(pred)
    gd = _dilate_frames(gb, r)
    pd = _dilate_frames(pb, r)
    n_g = np.count_nonzero(gb, axis=(1, 2)).astype(np.float64)
    n_p = np.count_nonzero(pb, axis=(1, 2)).astype(np.float64)
    p_hit = np.count_nonzero(pb & gd, axis=(1, 2))  # prediction boundary near the truth's
    g_hit = np.count_nonzero(gb & pd, axis=(1, 2))  # truth boundary near the prediction's
    # An empty boundary scores 1 on its own side; the other side then scores 0 by itself
    # (nothing to match), giving DAVIS's P=1,R=0 / P=0,R=1 / both-empty F=1 cases.
    precision = np.where(n_p > 0, p_hit / np.maximum(n_p, 1), 1.0)
    recall = np.where(n_g > 0, g_hit / np.maximum(n_g, 1), 1.0)
    s = precision + recall
    f = np.where(s > 0, 2 * precision * recall / np.where(s > 0, s, 1.0), 0.0)
    return f[0] if single else f


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
