"""Dense optical flow for the flow stream (FSN §3.2, after TSN): TV-L1 from OpenCV's contrib
build (`cv2.optflow`), or Farnebäck as the faster option.

A snippet's flow input stacks the x and y fields of `length` consecutive frame pairs around
its centre frame (10 channels for 5 fields), each clipped to +-bound pixels and scaled to
[-1, 1], the range TSN's flow images (bound 20) map to.
"""

from __future__ import annotations

import numpy as np

FLOW_METHODS = ("tvl1", "farneback")
FLOW_BOUND = 20.0


class FlowComputer:
    """Computes flow between grey frames; holds one TV-L1 solver (not thread-safe: one per
    worker)."""

    def __init__(self, method: str = "tvl1"):
        import cv2

        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r} (known: {', '.join(FLOW_METHODS)})")
        self.method = method
        self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create() if method == "tvl1" else None

    def __call__(self, prev_rgb: np.ndarray, next_rgb: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32 flow (dx, dy) in pixels from prev to next."""
        import cv2

        a = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
        b = cv2.cvtColor(next_rgb, cv2.COLOR_RGB2GRAY)
        if self._tvl1 is not None:
            return self._tvl1.calc(a, b, None)
        # OpenCV's documented defaults for video: pyramid 0.5 x 3 levels, window 15.
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def normalize_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Clip to +-bound pixels and scale to [-1, 1]."""
    return np.clip(flow, -bound, bound, out=np.empty_like(flow, dtype=np.float32)) / bound


def stack_pairs(center: int, num_frames: int, length: int = 5) -> list[tuple[int, int]]:
    """The `length` frame pairs (t, t+1) whose flows make the stack centred on `center`;
    shifted inward at the ends of the video so every pair exists."""
    if num_frames < 2:
        raise ValueError("optical flow needs at least 2 frames")
    first = center - length // 2
    first = max(0, min(first, num_frames - 1 - length))
    pairs = [(t, t + 1) for t in range(first, first + length)]
    # A video shorter than length+1 frames repeats its last pair.
    return [(min(a, num_frames - 2), min(a, num_frames - 2) + 1) for a, _ in pairs]


def flow_stack(frames, center: int, computer: FlowComputer, length: int = 5,
               bound: float = FLOW_BOUND) -> np.ndarray:
    """(2*length, H, W) float32 stacked, normalized flow around `center`: channels are
    x0, y0, x1, y1, ... (TSN's ordering). `frames` is indexable (T, H, W, 3) RGB."""
    pairs = stack_pairs(center, len(frames), length)
    fields = [normalize_flow(computer(frames[a], frames[b]), bound) for a, b in pairs]  # L x H x W x 2
    return np.concatenate([f.transpose(2, 0, 1) for f in fields], axis=0)
