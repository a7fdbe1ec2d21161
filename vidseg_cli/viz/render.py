"""The frames of an overlay video, one at a time: the frame, the prediction in its class
colours (viz/overlay.py), the ground truth's outlines, enlarged when small, and the legend.

Inputs are array-likes sliced per frame (a FrameArray, an h5py dataset, a numpy array),
so a long video streams through in batches instead of being loaded whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidseg_cli.viz.legend import legend_panel, with_legend
from vidseg_cli.viz.overlay import ColorTable, draw_contours, overlay_labels, overlay_probs

MIN_SHORT_SIDE = 192  # smaller frames are enlarged by a whole factor (at most 2), so masks stay crisp
MAX_SCALE = 2  # VP9 encoding time grows with the pixels: 4x the area is 4x the wait
BATCH = 16  # frames decoded at a time (the store decodes a batch of JPEGs in threads)


@dataclass
class Layers:
    """What one overlay video draws, frame by frame.

    frames: (T, H, W, 3) uint8 RGB, sliceable; pred: (T, H', W') class indices ("labels")
    or (T, C, H', W') posteriors ("scores"), sliceable; gt: (T, H, W) class indices or None.
    A prediction of another size than the frames is brought to it: posteriors by
    `stride` when coarser (bilinear), else resized (labels by nearest neighbour)."""

    frames: Any
    pred: Any
    kind: str  # "labels" | "scores"
    lut: ColorTable
    gt: np.ndarray | None = None
    gt_lut: ColorTable | None = None
    stride: int = 1


def scale_for(height: int, width: int) -> int:
    """The whole enlargement factor (at most MAX_SCALE) that brings the short side to
    MIN_SHORT_SIDE."""
    short = max(1, min(height, width))
    return max(1, min(MAX_SCALE, -(-MIN_SHORT_SIDE // short)))


def _fit_pred(p: np.ndarray, kind: str, size: tuple[int, int], stride: int) -> np.ndarray:
    from vidseg_cli.stages.rescale import resize_labels, resize_probs
    from vidseg_cli.stages.upsample import upsample_probs

    if p.shape[-2:] == size:
        return p
    if kind == "labels":
        return resize_labels(p[None], size)[0]
    if stride > 1:
        up = upsample_probs(p, stride, size)
        if up.shape[-2:] == size:
            return up
    return resize_probs(p, size)


def compose(frame: np.ndarray, pred: np.ndarray, layers: Layers, gt: np.ndarray | None,
            scale: int, note: str) -> np.ndarray:
    """One output frame: overlay, outlines, enlargement, legend."""
    size = frame.shape[:2]
    p = _fit_pred(np.asarray(pred), layers.kind, size, layers.stride)
    if layers.kind == "labels":
        img = overlay_labels(frame, p, layers.lut)
    else:
        img = overlay_probs(frame, p.astype(np.float32), layers.lut)
    if gt is not None and layers.gt_lut is not None:
        img = draw_contours(img, gt, layers.gt_lut)
    if scale > 1:
        img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    lut = layers.lut if layers.gt_lut is None else _union(layers.lut, layers.gt_lut)
    return with_legend(img, legend_panel(img.shape[1], lut, note))


def _union(a: ColorTable, b: ColorTable) -> ColorTable:
    names = list(a.names) + [n for n in b.names if n not in a.names]
    from vidseg_cli.viz.overlay import color_table

    return color_table(names)


def overlay_frames(layers: Layers, note: str,
                   advance: Callable[[int], None] = lambda n: None) -> Iterator[np.ndarray]:
    """The output frames in order; `advance(n)` after each batch (a progress bar)."""
    n = len(layers.frames)
    h, w = layers.frames.shape[1:3]
    scale = scale_for(h, w)
    for lo in range(0, n, BATCH):
        hi = min(n, lo + BATCH)
        frames = np.asarray(layers.frames[lo:hi])
        preds = np.asarray(layers.pred[lo:hi])
        for k in range(hi - lo):
            gt = layers.gt[lo + k] if layers.gt is not None and lo + k < len(layers.gt) else None
            yield compose(frames[k], preds[k], layers, gt, scale, note)
        advance(hi - lo)
