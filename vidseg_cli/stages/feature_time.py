"""Where published snippet features lie in a video: their centre frames.

Two rules cover the published sets (docs/features.md says which set follows which):

- snippets: feature i was computed on frames [i*stride, i*stride + snippet), and its
  centre is frame i*stride + snippet/2 (rounded down for an odd snippet). This is where
  ActionFormer places its features (libs/datasets/thumos14.py: `feat_offset = 0.5 *
  num_frames / feat_stride` in feature units) and OpenTAD (`offset_frames = 8` for its
  16-frame I3D snippets); at fps f, feature i's time is (i*stride + snippet/2) / f.
- rescaled: a fixed number N of rows spread evenly over the part of the video the
  snippets covered (F frames): row k stands for frames [k*F/N, (k+1)*F/N) and its
  centre is frame floor((k + 0.5) * F / N) (BSN/BMN's csv_mean_100: `tmp_anchor_xmin =
  k/N` of `corrected_second = F / fps`; ActionFormer's fixed-length sets likewise).

A features file stores integer centre frames (store: `centers` int64), so a centre that
falls between two frames is the frame it falls in.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rescaled_centers", "snippet_centers", "snippet_count_range"]


def snippet_centers(n: int, snippet: int, stride: int, num_frames: int) -> np.ndarray:
    """(n,) centre frames under the snippets rule, inside [0, num_frames)."""
    c = np.arange(n, dtype=np.int64) * stride + snippet // 2
    return np.minimum(c, num_frames - 1)


def snippet_count_range(num_frames: int, snippet: int, stride: int) -> tuple[int, int]:
    """How many snippet features a video of `num_frames` frames may have: at most as many
    as have their centre inside the video; at least the number of whole snippets that fit,
    less one snippet's worth (extractors that drop a last partial clip and round a
    duration to frames stop up to a snippet early)."""
    hi = max(1, (num_frames - 1 - snippet // 2) // stride + 1)
    whole = (num_frames - snippet) // stride + 1 if num_frames >= snippet else 1
    lo = max(1, whole - math.ceil(snippet / stride))
    return min(lo, hi), hi


def rescaled_centers(n: int, covered: int) -> np.ndarray:
    """(n,) centre frames of n rows spread over the first `covered` frames."""
    return np.floor((np.arange(n) + 0.5) * covered / n).astype(np.int64)
