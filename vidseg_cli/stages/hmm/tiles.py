"""The memory plan of `smooth`: spatial tiles whose working memory fits a budget, and
reading, casting and writing one tile of a (T, C, H, W) array or h5py dataset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_MAX_MEMORY = 1 << 30  # bytes of working memory for the recursions


@dataclass(frozen=True)
class TileInfo:
    """Spatial tiles of a (T, C, H, W) volume: `rows` x `cols` pixels each."""

    rows: int
    cols: int
    bytes_per_pixel: int
    count: int


def plan_tiles(
    shape: tuple[int, ...], in_itemsize: int, max_memory: int | None, compute_itemsize: int = 4,
    log_space: bool = False, out_itemsize: int | None = None, reserve: int = 0,
) -> TileInfo:
    """Tiles whose working memory fits `max_memory` bytes; whole rows when possible.

    Per pixel a tile holds, over T x C: the input slice, its float copy and the forward
    messages (in log space also the log-likelihoods and the C x C terms of one step), and,
    when `out_itemsize` is given (the output is written tile by tile through a buffer),
    that float buffer and its cast to the output's dtype when that differs. `reserve`
    bytes are set aside first for what does not scale with the tile (the input file's
    decompressed chunks)."""
    t, c = int(shape[0]), int(shape[1])
    h, w = (int(shape[2]), int(shape[3])) if len(shape) == 4 else (1, 1)
    if log_space:
        per_pixel = t * c * (in_itemsize + 3 * 8) + 2 * c * c * 8 + 4 * c * 8
    else:
        per_pixel = t * c * (in_itemsize + 2 * compute_itemsize) + 4 * t * compute_itemsize
    if out_itemsize is not None:
        per_pixel += t * c * (compute_itemsize + (out_itemsize if out_itemsize != compute_itemsize else 0))
    if max_memory is None or max_memory <= 0:
        return TileInfo(h, w, per_pixel, 1)
    pixels = (max_memory - max(int(reserve), 0)) // max(per_pixel, 1)
    if pixels < 1:
        need = per_pixel + max(int(reserve), 0)
        raise ValueError(
            f"max_memory of {max_memory} bytes is too small: one pixel of {t} frames x {c} "
            f"classes needs {need} bytes"
        )
    if pixels >= w:
        rows, cols = int(min(h, pixels // w)), w
    else:
        rows, cols = 1, int(pixels)
    count = math.ceil(h / rows) * math.ceil(w / cols)
    return TileInfo(rows, cols, per_pixel, count)


def file_reserve(probs: Any) -> int:
    """Bytes a tiled pass over an HDF5 input holds besides its tiles: a tile of rows
    decompresses whole chunks, one at a time, and h5py's chunk cache (1 MiB) keeps those
    that fit; nothing for a numpy array."""
    chunks = None if isinstance(probs, np.ndarray) else getattr(probs, "chunks", None)
    if not chunks:
        return 0
    chunk = math.prod(chunks) * np.dtype(probs.dtype).itemsize
    return chunk + min(chunk, 1 << 20)



def tile_view(x: Any, frame_level: bool, ys: slice, xs: slice,
               dtype: Any = None) -> np.ndarray | None:
    """x[:, :, ys, xs] as a (T, C, n) view when `x` is a C-contiguous numpy array (of
    `dtype`, if given) and the tile whole rows (a run of each class plane's pixels); else
    None."""
    if not isinstance(x, np.ndarray) or not x.flags.c_contiguous:
        return None
    if dtype is not None and x.dtype != dtype:
        return None
    t_len, c = x.shape[0], x.shape[1]
    if frame_level:
        return x.reshape(t_len, c, 1)
    if xs.start != 0 or xs.stop != x.shape[3]:
        return None
    return x[:, :, ys, :].reshape(t_len, c, -1)  # T x C x n, a view



def cast_into(buf: np.ndarray | None, src: np.ndarray, dtype: Any) -> np.ndarray:
    """src cast to `dtype` in `buf`, reallocated unless it has src's shape and that dtype.
    To or from float16 the cast runs on the torch side: numpy's is ~20x slower."""
    if buf is None or buf.shape != src.shape or buf.dtype != dtype:
        buf = np.empty(src.shape, dtype)
    if np.float16 in (src.dtype, buf.dtype):
        torch.from_numpy(buf).copy_(torch.from_numpy(np.ascontiguousarray(src)))
    else:
        np.copyto(buf, src, casting="unsafe")
    return buf


def read_tile(probs: Any, buf: np.ndarray | None, frame_level: bool, ys: slice,
               xs: slice) -> np.ndarray | None:
    """probs[:, :, ys, xs] read into `buf` (or a new array kept for the next tile) when
    `probs` is an h5py dataset; None for anything else (the caller slices it)."""
    if frame_level or not hasattr(probs, "read_direct"):
        return None
    shape = (probs.shape[0], probs.shape[1], ys.stop - ys.start, xs.stop - xs.start)
    if buf is None or buf.shape != shape:
        buf = np.empty(shape, probs.dtype)
    probs.read_direct(buf, np.s_[:, :, ys, xs])
    return buf


def store_tile(out: Any, tile: np.ndarray, frame_level: bool, ys: slice, xs: slice,
                buf: np.ndarray | None = None) -> np.ndarray | None:
    """out[:, :, ys, xs] = tile ((T, C, n)), cast to out's dtype (float16 on the torch
    side) in `buf` when it fits; nothing to do when the tile is a view of `out`; `out` may
    be an h5py dataset. Returns the cast buffer, for the next tile."""
    if isinstance(out, np.ndarray) and np.shares_memory(tile, out):
        return buf
    t_len, c = out.shape[0], out.shape[1]
    if out.dtype != tile.dtype:
        tile = buf = cast_into(buf, tile, out.dtype)
    if frame_level:
        out[:, :] = tile.reshape(t_len, c)
    else:
        out[:, :, ys, xs] = tile.reshape(t_len, c, ys.stop - ys.start, xs.stop - xs.start)
    return buf

