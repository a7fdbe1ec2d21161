"""Segment-tube's initial segmentation B_o (§2.3, "using saliency [18, 26]").

[18] is a saliency benchmark and [26] (Wang et al., ICCV 2011) has no public code, so:

- `static` (default): OpenCV contrib's fine-grained static saliency
  (cv2.saliency.StaticSaliencyFineGrained) per frame, averaged over each superpixel; a
  superpixel is foreground when its mean exceeds twice its frame's mean saliency
  (Achanta et al.'s adaptive threshold).
- `motion` (not the paper's): the absolute difference between a frame's grey level and
  the video's per-pixel temporal median, averaged over each superpixel; foreground above
  max(2 x the frame's mean difference, 10 grey levels).

Both work on the superpixels' working-size frames (superpixels.working_frames).
"""

from __future__ import annotations

import cv2
import numpy as np

from vidseg_cli.stages.superpixels import Superpixels, pixel_means

__all__ = ["MODES", "initial_mask", "motion_saliency", "static_saliency"]

MODES = ("static", "motion")
MOTION_FLOOR = 10.0  # grey levels: below this a difference is noise, not motion


def static_saliency(frames: np.ndarray) -> np.ndarray:
    """T x h x w float32 fine-grained saliency in [0, 1] of T x h x w x 3 uint8 RGB frames."""
    detector = cv2.saliency.StaticSaliencyFineGrained_create()
    maps = []
    for frame in frames:
        ok, sal = detector.computeSaliency(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("cv2 fine-grained saliency failed on a frame")
        maps.append(np.asarray(sal, dtype=np.float32))
    return np.stack(maps)


def motion_saliency(frames: np.ndarray) -> np.ndarray:
    """T x h x w float32 |grey - temporal median| (grey levels) of uint8 RGB frames."""
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    return np.abs(grey - np.median(grey, axis=0))


def initial_mask(sp: Superpixels, frames: np.ndarray, mode: str = "static") -> np.ndarray:
    """B_o: N bool, one per superpixel, from the working-size frames sp was computed on."""
    if mode not in MODES:
        raise ValueError(f"saliency mode must be one of {', '.join(MODES)}, got {mode!r}")
    if frames.shape[:3] != sp.labels.shape:
        raise ValueError(
            f"frames are {frames.shape[:3]}, the superpixel map {sp.labels.shape}; "
            "pass superpixels.working_frames(...)"
        )
    sal = static_saliency(frames) if mode == "static" else motion_saliency(frames)  # T x h x w
    per_node = pixel_means(sp.labels, sal, sp.num_nodes)  # N
    threshold = 2.0 * sal.mean(axis=(1, 2))  # T
    if mode == "motion":
        threshold = np.maximum(threshold, MOTION_FLOOR)
    return per_node > threshold[sp.frame]
