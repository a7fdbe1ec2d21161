"""Segment-tube's temporal localization from clip scores (Segment-tube §2.1, Eq. 1-4).

Clips: "variable-length (16 and 32 frames per clip) sliding window with 75% overlap
ratio" (`clip_windows`). From each clip's proposal scores p^pro (2: background, action)
and classification scores p^cla (K+1) this gives the video's class k', a per-frame
confidence α_t, per-frame labels l_t and the detections (runs of l_t = k').

How the equations are read (the paper leaves these open):
- Eq. 1: l^fla = 1 when p^pro(1) > p^pro(0), output index 1 being action (threshold 0.5).
- Eq. 2: for clips with l^fla = 1, l^spe = argmax_k p^cla(k) and v^spe = max_k p^cla(k),
  k = 0..K.
- The video class: "the average of v^spe over all video clips for each action label ...
  the label k' with the maximum average": k' = argmax over k = 1..K of the mean (or, with
  mode "sum", the sum) of v^spe over the clips with l^fla = 1 and l^spe = k. No such clip:
  k' = 0, α = 0, l = 0, no detection.
- Eq. 3: α_t = Σ v^spe / |{j : f_t ∈ h_j}|, the numerator over the covering clips with
  l^fla = 1 and l^spe = k' only (another class's score is no evidence for k'), the
  denominator over every covering window of either length; a frame no window covers has
  α = 0.
- Eq. 4: l_t = k' when α_t > γ (strictly), else 0; γ = 0.6 ("We empirically set").
- Detections: each maximal run of l_t = k' is a segment [first, last + 1) of class k'
  scored by the mean α over the run (the paper gives no score).
- Detection ladder (a deviation, docs/segment_tube.md): the maximal runs of α_t > τ for
  every τ of `ladder` are added to those runs, each scored by its mean α, and greedy NMS
  at `nms_iou` tIoU removes the near-duplicates. The runs at γ stay the labels l_t; the
  ladder adds the segments a lower threshold would find, ranked below the confident ones
  by their lower mean α, so the detections' AP no longer hangs on one γ. An empty ladder
  gives the paper's runs alone (they never overlap, so NMS keeps them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidseg_cli.stages.nms import nms
from vidseg_cli.stages.windows import multiscale_windows

CLIP_LENGTHS = (16, 32)  # §2.1 clip lengths, frames
CLIP_OVERLAP = 0.75  # §2.1
GAMMA = 0.6  # Eq. 4
VIDEO_CLASS_MODES = ("mean", "sum")
LADDER = (0.2, 0.3, 0.4, 0.5)  # the detection ladder's thresholds [D]
LADDER_NMS = 0.7  # tIoU above which a lower-scored ladder segment is dropped [D]


def clip_windows(num_frames: int, lengths: tuple[int, ...] = CLIP_LENGTHS,
                 overlap: float = CLIP_OVERLAP) -> np.ndarray:
    """(N, 2) [start, end) clip windows of §2.1: every length, stride length·(1 − overlap),
    grouped by length, in start order within a length; none in a video shorter than 16."""
    return multiscale_windows(num_frames, tuple(lengths), overlap)


@dataclass(frozen=True)
class TemporalResult:
    """What Eq. 1-4 give for one video."""

    flag: np.ndarray  # (N,) int64 l^fla per clip (Eq. 1)
    clip_label: np.ndarray  # (N,) int64 l^spe per clip, -1 where l^fla = 0 (Eq. 2)
    clip_score: np.ndarray  # (N,) float64 v^spe per clip, 0 where l^fla = 0 (Eq. 2)
    video_class: int  # k' in 1..K; 0 when no clip has l^fla = 1 and l^spe >= 1
    alpha: np.ndarray  # (T,) float64 α_t (Eq. 3)
    labels: np.ndarray  # (T,) int64 l_t (Eq. 4)
    segments: np.ndarray  # (D, 2) int64 [start, end) frames, by descending score
    segment_labels: np.ndarray  # (D,) int64, all k'
    segment_scores: np.ndarray  # (D,) float64 mean α over each segment


def clip_labels(p_pro: np.ndarray, p_cla: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 1 and Eq. 2: l^fla, l^spe (-1 where l^fla = 0), v^spe (0 where l^fla = 0)."""
    flag = (p_pro[:, 1] > p_pro[:, 0]).astype(np.int64)  # Eq. 1
    spe = np.where(flag == 1, p_cla.argmax(1), -1).astype(np.int64)  # Eq. 2
    v = np.where(flag == 1, p_cla.max(1, initial=-np.inf), 0.0).astype(np.float64)
    return flag, spe, v


def choose_video_class(clip_label: np.ndarray, clip_score: np.ndarray, num_classes: int,
                       mode: str = "mean") -> int:
    """k' over action classes 1..num_classes−1: the highest mean (or sum) of v^spe over
    the clips labelled k; ties go to the lower k; 0 when no clip has an action label."""
    if mode not in VIDEO_CLASS_MODES:
        raise ValueError(f"video class mode must be one of {', '.join(VIDEO_CLASS_MODES)}, got {mode!r}")
    act = clip_label >= 1
    if not act.any():
        return 0
    total = np.bincount(clip_label[act], weights=clip_score[act], minlength=num_classes)
    count = np.bincount(clip_label[act], minlength=num_classes)
    value = total if mode == "sum" else np.divide(total, count, out=np.zeros(num_classes), where=count > 0)
    value = np.where(count > 0, value, -np.inf)
    value[0] = -np.inf
    return int(value.argmax())


def frame_confidence(windows: np.ndarray, clip_label: np.ndarray, clip_score: np.ndarray,
                     video_class: int, num_frames: int) -> np.ndarray:
    """Eq. 3: α_t (T,), numerator over the covering clips labelled k', denominator over
    every covering window; 0 where no window covers the frame or k' = 0."""
    alpha = np.zeros(num_frames, np.float64)
    if video_class < 1 or len(windows) == 0:
        return alpha
    cover = np.zeros(num_frames + 1, np.int64)
    np.add.at(cover, windows[:, 0], 1)
    np.add.at(cover, windows[:, 1], -1)
    cover = np.cumsum(cover[:-1])  # windows covering each frame (exact integers)
    for j in np.flatnonzero(clip_label == video_class):
        alpha[windows[j, 0]:windows[j, 1]] += clip_score[j]
    np.divide(alpha, cover, out=alpha, where=cover > 0)
    return alpha


def label_runs(labels: np.ndarray, video_class: int) -> np.ndarray:
    """(D, 2) [start, end) of the maximal runs of `labels == video_class`."""
    if video_class < 1:
        return np.zeros((0, 2), np.int64)
    on = np.concatenate([[0], (labels == video_class).astype(np.int8), [0]])
    return np.flatnonzero(np.diff(on)).reshape(-1, 2).astype(np.int64)


def ladder_detections(alpha: np.ndarray, video_class: int, thresholds: Sequence[float],
                      nms_iou: float = LADDER_NMS) -> tuple[np.ndarray, np.ndarray]:
    """(D, 2) [start, end) segments and their scores (mean α), by descending score: the
    maximal runs of α > τ for each τ of `thresholds`, one copy of each, after greedy NMS
    at `nms_iou` tIoU (module docstring). None when k' = 0."""
    if video_class < 1:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float64)
    runs = np.unique(np.concatenate([label_runs(np.where(alpha > t, video_class, 0), video_class)
                                     for t in thresholds] or [np.zeros((0, 2), np.int64)]), axis=0)
    scores = np.array([alpha[s:e].mean() for s, e in runs], np.float64)
    keep = nms(runs, scores, nms_iou)
    return runs[keep].reshape(-1, 2).astype(np.int64), scores[keep]


def localize_clips(
    windows: np.ndarray,  # (N, 2) [start, end) clip windows, frames
    p_pro: np.ndarray,  # (N, 2) proposal probabilities [background, action]
    p_cla: np.ndarray,  # (N, K+1) classification probabilities, index 0 = background
    num_frames: int,  # T
    gamma: float = GAMMA,  # Eq. 4 threshold
    video_class: str = "mean",  # how k' is chosen: "mean" (the paper) or "sum"
    ladder: Sequence[float] = (),  # the detection ladder's thresholds; () = the paper's runs
    nms_iou: float = LADDER_NMS,  # the ladder's NMS
) -> TemporalResult:
    """Eq. 1-4 and the detections of one video (module docstring)."""
    windows = np.asarray(windows).reshape(-1, 2)
    if len(windows) and not np.array_equal(windows, np.round(windows)):
        raise ValueError("windows must be whole frames")
    windows = windows.astype(np.int64)
    p_pro = np.asarray(p_pro, np.float64).reshape(len(windows), 2)
    p_cla = np.asarray(p_cla, np.float64)
    if p_cla.ndim != 2 or len(p_cla) != len(windows) or p_cla.shape[1] < 2:
        raise ValueError(f"p_cla must be {len(windows)} x (K+1) with K >= 1, got {list(p_cla.shape)}")
    if len(windows) and (windows[:, 0].min() < 0 or windows[:, 1].max() > num_frames
                         or (windows[:, 1] <= windows[:, 0]).any()):
        raise ValueError(f"windows must be non-empty [start, end) inside 0..{num_frames}")
    flag, spe, v = clip_labels(p_pro, p_cla)
    k = choose_video_class(spe, v, p_cla.shape[1], video_class)
    alpha = frame_confidence(windows, spe, v, k, num_frames)
    labels = np.where(alpha > gamma, k, 0).astype(np.int64)  # Eq. 4 (α = 0 everywhere when k' = 0)
    segments, scores = ladder_detections(alpha, k, (gamma, *ladder), nms_iou)
    return TemporalResult(flag, spe, v, k, alpha, labels, segments,
                          np.full(len(segments), k, np.int64), scores)
