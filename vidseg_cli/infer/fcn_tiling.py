"""3DFCN's exact temporal tiling (3DFCN §3.3 runs the whole video in one pass; tiles bound
the memory): a tile starts on a multiple of the class map's temporal stride (so the pooling
grids line up) and contributes only the class-map cells whose whole temporal receptive
field (`temporal_reach`) lies inside it, or reaches past the video's own ends, where the
untiled pass pads exactly as the tile does. Those cells are the cells of the untiled pass
(a test checks tiled == untiled); the DeConv then runs once on the stitched class map."""

from __future__ import annotations

import math
from typing import Any

from torch import nn


def _t(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def temporal_reach(model) -> tuple[int, int, int]:
    """(S, lo, hi): class-map cell j of a 3DFCN depends on input frames
    [j*S + lo, j*S + hi] (padding positions included) and on no other.

    Composed backwards through the trunk: an output range [a, b] of a layer with temporal
    kernel k, stride s, padding p and dilation d reads [a*s - p, b*s - p + d*(k-1)]."""
    layers = [getattr(model, n) for n in (
        "conv1", "pool1", "conv2", "pool2", "conv3a", "conv3b", "pool3", "conv4a", "conv4b",
        "pool4", "conv5a", "conv5b", "pool5", "fc6", "fc7", "score")]
    a, b, s_tot = 0, 0, 1
    for layer in reversed(layers):
        if not isinstance(layer, (nn.Conv3d, nn.MaxPool3d)):
            raise TypeError(f"unexpected layer {type(layer).__name__}")
        k, s = _t(layer.kernel_size), _t(layer.stride)
        p, d = _t(layer.padding), _t(layer.dilation)
        a, b = a * s - p, b * s - p + d * (k - 1)
        s_tot *= s
    return s_tot, a, b


def tile_plan(num_frames: int, num_cells: int, reach: tuple[int, int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """Temporal tiles for an exact tiled 3DFCN pass: (a, b, j0, j1) = run frames [a, b),
    keep class-map cells [j0, j1) (whole-video indices; the tile's own cell index is
    j - a/S). Tiles start on multiples of S; `tile` is rounded down to one and raised to
    the least length that always keeps a cell."""
    S, lo, hi = reach
    min_tile = S * math.ceil((hi - lo + S) / S)
    tile = max(min_tile, (tile // S) * S)
    plan, j, a = [], 0, 0
    while j < num_cells:
        b = min(num_frames, a + tile)
        if b == num_frames and b - a < tile:  # last tile: as long as allowed, ends on the video
            a = max(0, min(a, ((num_frames - tile) // S) * S)) if num_frames > tile else 0
        last = num_cells - 1 if b == num_frames else (b - 1 - hi) // S
        if last < j:
            raise RuntimeError(f"tiling made no progress at cell {j} (tile {tile}, reach {reach})")
        if a > 0 and j * S + lo < a:
            raise RuntimeError(f"cell {j} starts before tile [{a}, {b})")
        plan.append((a, b, j, last + 1))
        j = last + 1
        a = max(0, ((j * S + lo) // S) * S)
    return plan


def fcn_trunk_bytes_per_frame(model, height: int, width: int) -> int:
    """Peak working memory of the 3DFCN trunk per input frame (float32): the input tile,
    conv1's output and its ReLU (the largest maps; later maps are 4x+ smaller)."""
    c1 = model.conv1.out_channels
    return 4 * height * width * (3 + 2 * c1)


def upsample_frames(model, score, size: tuple[int, int, int], f0: int, f1: int):
    """Frames [f0, f1) of `model.upsample(score, size)` without the other frames: the
    DeConv (kernel 2s, stride s) gives each frame from the two class-map cells whose
    centres c0 + s*i enclose it, so the cells [j0, j1) around the chunk, upsampled as a
    video that starts at frame s*j0, give exactly those frames (the edge replication of
    `upsample` happens only where the slice meets the class map's own ends)."""
    s, c0, n = model.out_stride[0], model.window_center[0], score.shape[2]
    j0 = min(n - 1, max(0, math.floor((f0 - c0) / s)))
    j1 = max(j0 + 1, min(n, math.floor((f1 - 1 - c0) / s) + 2))
    up = model.upsample(score[:, :, j0:j1], (f1 - s * j0, *size[1:]))  # B x C x (f1 - s*j0) x H x W
    return up[:, :, f0 - s * j0 :]
