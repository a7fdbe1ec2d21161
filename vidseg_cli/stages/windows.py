"""S-CNN multi-scale segment generation (S-CNN §3.1)."""

from __future__ import annotations

import numpy as np

# S-CNN §3.1: sliding windows of these lengths (frames) with 75% overlap.
SCNN_LENGTHS = (16, 32, 64, 128, 256, 512)
SCNN_OVERLAP = 0.75
CLIP_FRAMES = 16


def multiscale_windows(
    num_frames: int, lengths: tuple[int, ...] = SCNN_LENGTHS, overlap: float = SCNN_OVERLAP
) -> np.ndarray:
    """(N, 2) [start, end) windows of every length, stride length*(1-overlap); windows
    longer than the video are skipped, so a video shorter than 16 frames has none."""
    out = []
    for length in lengths:
        if length > num_frames:
            continue
        stride = max(1, int(round(length * (1 - overlap))))
        starts = np.arange(0, num_frames - length + 1, stride)
        out.append(np.stack([starts, starts + length], axis=1))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def sample_clip_indices(start: int, end: int, clip_frames: int = CLIP_FRAMES) -> np.ndarray:
    """Frame indices of the `clip_frames` frames sampled uniformly from [start, end)."""
    step = (end - start) / clip_frames
    return (start + np.floor(np.arange(clip_frames) * step)).astype(np.int64)
