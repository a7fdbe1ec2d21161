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

For training (train/segment_tube.py) this module also makes the saliency-aware clips'
frames (B_o from stages/saliency.py on stages/superpixels.py's superpixels; the soft mask
x' = m x + (1 - m)(κ x + (1 - κ) μ)), the labelled windows of every video of a dataset
read as `train scnn` reads it (datasets/scnn_data.py's FrameCache and find_video), the
epoch's random chunks of consecutive windows, the class weights, and the float16 fc7 cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidseg_cli.core.fs import write_with
from vidseg_cli.datasets.scnn_data import VIDEO_SUFFIXES, CachedVideo, FrameCache, find_video
from vidseg_cli.errors import InputError
from vidseg_cli.stages.saliency import initial_mask
from vidseg_cli.stages.segment_tube_temporal import CLIP_LENGTHS, CLIP_OVERLAP, clip_windows
from vidseg_cli.stages.superpixels import (
    SuperpixelParams,
    compute_superpixels,
    node_masks,
    working_frames,
)

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


# -- saliency-aware clips (§2.1) ---------------------------------------------------------------
MASK_KEEP = 0.5  # κ: the share of a pixel outside the mask that is kept [U]
MASK_MODES = ("soft", "hard", "none")
MASK_FILL = 128.0  # the fill of a trunk whose pixel mean is 0 (raw RGB, the C3D port) [U]


def saliency_masks(blocks: Iterable[np.ndarray], size_hw: tuple[int, int], mode: str = "static",
                   params: SuperpixelParams | None = None) -> np.ndarray:
    """B_o painted as T x h x w uint8 0/1 pixel masks at `size_hw` (the trunk's frame size)
    from blocks of a video's source frames (any size, uint8 RGB): SLIC superpixels and the
    initial saliency mask of stages/saliency.py on the frames shrunk to params.work_size,
    exactly as `vidseg segment-tube` computes them, so training sees the masks the command
    gives; block by block (the motion mode's temporal median is the block's)."""
    params = params or SuperpixelParams()
    out = []
    for block in blocks:
        block = np.asarray(block)
        sp = compute_superpixels(block, params)
        b = initial_mask(sp, working_frames(block, params.work_size), mode)
        out.append(node_masks(sp, b, tuple(size_hw)).astype(np.uint8))
    return np.concatenate(out) if out else np.zeros((0, *size_hw), np.uint8)


def mask_frames(frames: np.ndarray, masks: np.ndarray, fill: float, keep: float = MASK_KEEP) -> np.ndarray:
    """Saliency-aware frames: x' = m x + (1 - m)(κ x + (1 - κ) μ) with m the mask dilated by
    one pixel, μ = `fill`, κ = `keep` (κ = 0 is a hard mask). T x H x W x 3 uint8 in and out."""
    kernel = np.ones((3, 3), np.uint8)
    m = np.stack([cv2.dilate(np.ascontiguousarray(f), kernel) for f in masks])[..., None] > 0
    outside = keep * frames.astype(np.float32) + (1.0 - keep) * fill
    return np.where(m, frames, np.clip(np.rint(outside), 0, 255).astype(np.uint8))


class MaskedFrames:
    """A video's frames with the saliency mask applied on read (`frames[a:b]`), so a
    `ClipReader` takes saliency-aware clips without a masked copy of the video."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray | None, fill: float, keep: float):
        self.frames, self.masks, self.fill, self.keep = frames, masks, fill, keep
        self.shape = frames.shape

    def __getitem__(self, sl: slice) -> np.ndarray:
        block = np.asarray(self.frames[sl])
        if self.masks is None:
            return block
        return mask_frames(block, np.asarray(self.masks[sl]), self.fill, self.keep)


# -- the training set: videos, windows and labels ---------------------------------------------
@dataclass
class TubeVideo:
    """One training video: its cached frames and, per clip length, its windows in start
    order with their coverage labels (-1 ignored, 0 background, 1..K)."""

    video_id: str
    frames: CachedVideo
    windows: dict[int, np.ndarray]  # length -> (L, 2) [start, end)
    labels: dict[int, np.ndarray]  # length -> (L,) int64


def load_tube_videos(gt_path: str | os.PathLike, videos_dir: str | os.PathLike, cache: FrameCache,
                     subset: str | None = "training", lengths: Sequence[int] = CLIP_LENGTHS,
                     overlap: float = CLIP_OVERLAP) -> tuple[list[str], list[TubeVideo]]:
    """(classes with 'background' first, the videos of `subset` with labelled windows);
    every ground-truth video must be found in `videos_dir` (find_video)."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    gt = load_temporal_gt(gt_path, subset)
    ids = gt.videos
    if not ids:
        raise InputError(gt_path, f"no videos in subset '{gt.subset}'")
    missing = [v for v in ids if find_video(Path(videos_dir), v) is None]
    if missing:
        raise InputError(videos_dir, f"{len(missing)} of the {len(ids)} ground-truth videos are "
                                     f"missing (e.g. {missing[0]}; looked for "
                                     f"{'/'.join(VIDEO_SUFFIXES)}, .frames.h5 or a frame folder)")
    out = []
    for v in ids:
        cv = cache.get(find_video(Path(videos_dir), v))
        sel = gt.video == v
        seg = np.round(gt.segments[sel] * cv.fps).astype(np.int64)  # seconds -> frames
        wins, labs = {}, {}
        for n in lengths:
            wins[n] = clip_windows(cv.num_frames, (int(n),), overlap)
            labs[n] = coverage_labels(wins[n], seg, gt.label[sel] + 1)[0]
        out.append(TubeVideo(v, cv, wins, labs))
    return ["background", *gt.classes], out


def class_weights(labels: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """Loss weights ~ 1 / frequency of each class among the labelled windows, scaled so
    that a balanced set gets 1 everywhere; a class with no window gets 1."""
    y = np.concatenate([np.asarray(lab).reshape(-1) for lab in labels]) if labels else np.zeros(0)
    n = np.bincount(y[y >= 0].astype(np.int64), minlength=num_classes)[:num_classes].astype(np.float64)
    seen = n > 0
    w = np.ones(num_classes)
    w[seen] = n[seen].sum() / (seen.sum() * n[seen])
    return w


def random_chunks(lengths: Sequence[int], seq_len: int, rng: np.random.Generator
                  ) -> list[tuple[int, int, int]]:
    """An epoch's chunks of at most `seq_len` consecutive windows, (sequence, start, end),
    shuffled: each sequence is cut at a random offset, then every `seq_len` windows."""
    out = []
    for i, n in enumerate(lengths):
        off = int(rng.integers(0, seq_len)) if n > seq_len else 0
        cuts = sorted({0, *range(off, n, seq_len), n})
        out += [(i, a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    return [out[j] for j in rng.permutation(len(out))]


# -- the fc7 feature cache -----------------------------------------------------------------------
class FeatureCache:
    """fc7 features of every window of a video, one float16 .npz per video in `folder`,
    named by the video and a key of everything that makes them (trunk, masks, windows)."""

    def __init__(self, folder: str | os.PathLike, settings: dict):
        self.folder = Path(folder)
        self.settings = settings

    def path(self, video: TubeVideo) -> Path:
        src = Path(video.frames.source)
        st = src.stat()
        raw = json.dumps({**self.settings, "source": str(src.resolve()), "size": st.st_size,
                          "mtime": st.st_mtime_ns}, sort_keys=True)
        key = hashlib.sha1(raw.encode()).hexdigest()[:16]
        return self.folder / f"{video.video_id.replace('/', '_')}.{key}.npz"

    def get(self, video: TubeVideo, compute) -> tuple[dict[int, np.ndarray], bool]:
        """({length: (L, D) float16}, whether it was computed now); `compute(video)` makes
        {length: (L, D) float32} when the cache lacks it."""
        p = self.path(video)
        if not p.is_file():
            feats = {int(n): np.asarray(f, np.float16) for n, f in compute(video).items()}
            self.folder.mkdir(parents=True, exist_ok=True)
            write_with(p, lambda tmp: np.savez(tmp, **{f"fc7_{n}": f for n, f in feats.items()}),
                       suffix=".npz")
            return feats, True
        with np.load(p) as z:
            return {int(k[4:]): z[k] for k in z.files}, False
