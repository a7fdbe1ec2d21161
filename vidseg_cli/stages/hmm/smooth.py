"""`smooth`: the HMM belief of 3DFCN §3.5 over a (T, C, H, W) or (T, C) array, tile by
tile (`tiles`), on the fused numba kernel (`kernel`) or the torch recursions
(`recursions`)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from vidseg_cli.runtime import resolve_device
from vidseg_cli.stages.hmm.fit import check_hmm
from vidseg_cli.stages.hmm.recursions import (
    DEFAULT_MIN_PROB,
    DEFAULT_TOLERANCE,
    SCORE_PRIORS,
    Place,
    Recursions,
    check_probs,
    emission_weights,
    observation_prior,
    start_weights,
)
from vidseg_cli.stages.hmm.tiles import (
    DEFAULT_MAX_MEMORY,
    TileInfo,
    cast_into,
    file_reserve,
    plan_tiles,
    read_tile,
    store_tile,
    tile_view,
)

CPU_BLOCK = 4096  # pixels per CPU work unit of the torch backend: (C, n) arrays in L2


def _device(device: Any) -> Any:
    return resolve_device("auto" if device is None else str(device))


BACKENDS = ("auto", "numba", "torch")


def smooth(
    probs: Any,
    prior: np.ndarray,
    transition: np.ndarray,
    *,
    out: Any = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    device: Any = "cpu",
    min_prob: float = DEFAULT_MIN_PROB,
    tolerance: float | None = DEFAULT_TOLERANCE,
    threads: int = 1,
    dtype: Any = None,
    log_space: bool | None = None,
    progress: Callable[[int], None] | None = None,
    backend: str = "auto",
    score_prior: str = "hmm",
    plan: TileInfo | None = None,
) -> Any:
    """HMM belief P(l_t | Z_T) (3DFCN §3.5, Eq. (1)-(4)) of per-pixel scores (T, C, H, W)
    or per-frame scores (T, C).

    probs: anything sliced like a numpy array (a numpy array, an h5py dataset): only one
        tile is read at a time (a C-contiguous float32 numpy array is used in place).
        Softmax posteriors over C classes.
    prior (C,), transition (C, C): P(l_1) and P(l_t = j | l_{t-1} = i) in row i, col j.
    out: where to write the belief (same shape; float16/32): a numpy array, or anything
        that takes `out[:, :, ys, xs] = tile` (an h5py dataset: the belief is then never
        held whole); a new float32 array if None. Returned.
    max_memory: bytes of working memory per tile (None: one tile).
    device: "cpu", "cuda", "cuda:1", "auto" or a torch.device.
    min_prob: posteriors below this are read as this.
    tolerance: refuse (ProbabilityError) scores whose class sums differ from 1 by more,
        or that hold NaN or negative values; None skips the check.
    threads: CPU worker threads over pixel blocks.
    dtype: compute dtype (torch) of the scaled recursions; float32 by default.
    log_space: run the recursions in float64 log space: exact over any range, several
        times slower. Default: for frame scores only. The scaled float32 recursions are
        exact for HMMs without zeros (what hmm-fit's smoothing gives); an HMM with zero
        transitions can make the filtered and smoothed beliefs differ by more than
        float32's range over long videos, and then needs log space.
    progress: called with the number of tiles done.
    plan: the tiles to use (`plan_tiles`), instead of planning them from max_memory: a
        caller that chunks its output file like the tiles passes the plan it chunked by.
    backend: "numba" (the fused CPU kernel of stages/hmm/kernel.py), "torch" (CPU or
        GPU, and log space), or "auto": numba for the scaled float32 recursions on CPU,
        else torch.
    score_prior: what the posteriors are divided by (`observation_prior`): "hmm" (Eq. (4),
        the paper) or "uniform" (posteriors used as likelihoods).
    """
    shape = tuple(probs.shape)
    if len(shape) not in (2, 4):
        raise ValueError(f"expected scores of shape (T, C) or (T, C, H, W), found {shape}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if score_prior not in SCORE_PRIORS:
        raise ValueError(f"score_prior must be one of {', '.join(SCORE_PRIORS)}, got {score_prior!r}")
    t_len, c = shape[0], shape[1]
    prior = np.asarray(prior, np.float64)
    transition = np.asarray(transition, np.float64)
    if prior.shape != (c,) or transition.shape != (c, c):
        raise ValueError(
            f"the HMM has {prior.size} classes (prior {prior.shape}, transition "
            f"{transition.shape}), the scores {c}"
        )
    check_hmm(prior, transition)
    frame_level = len(shape) == 2
    dev = _device(device)
    if log_space is None:
        log_space = frame_level
    if log_space:
        dtype = torch.float64
    elif dtype is None:
        dtype = torch.float32
    if backend == "auto":
        backend = "numba" if dev.type == "cpu" and dtype == torch.float32 else "torch"
    elif backend == "numba" and (dev.type != "cpu" or dtype != torch.float32):
        raise ValueError("the numba kernel runs the scaled float32 recursions on CPU; "
                         "use backend='torch' for another device, dtype or log space")
    if out is None:
        out = np.empty(shape, np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    elif np.dtype(out.dtype) not in (np.float16, np.float32, np.float64):
        raise ValueError(f"out must be float16, float32 or float64, found {out.dtype}")
    if t_len == 0 or math.prod(shape) == 0:
        return out

    in_itemsize = np.dtype(getattr(probs, "dtype", np.float32)).itemsize
    compute_itemsize = torch.empty((), dtype=dtype).element_size()
    if frame_level:
        tiles = [(slice(0, 1), slice(0, 1))]
        width = 1
    else:
        h, width = shape[2], shape[3]
        if plan is None:
            # Written in place only into a C-contiguous float32 array (the numba kernel's
            # output); anything else goes through a float32 tile buffer and a cast.
            buffered = (tile_view(out, False, slice(0, 1), slice(0, width)) is None
                        or np.dtype(out.dtype) != np.float32)
            plan = plan_tiles(shape, in_itemsize, max_memory, compute_itemsize, log_space,
                              out_itemsize=np.dtype(out.dtype).itemsize if buffered else None,
                              reserve=file_reserve(probs))
        tiles = [
            (slice(y, min(h, y + plan.rows)), slice(x, min(width, x + plan.cols)))
            for y in range(0, h, plan.rows)
            for x in range(0, width, plan.cols)
        ]
    threads = max(1, int(threads))
    if backend == "numba":
        _smooth_numba(probs, out, prior, transition, tiles, frame_level, min_prob,
                      tolerance, threads, progress, score_prior)
        return out

    rec = Recursions(prior, transition, t_len, dev, dtype, log_space, min_prob, tolerance,
                      score_prior)
    old_threads = torch.get_num_threads()
    on_cpu = dev.type == "cpu"
    if on_cpu:
        # Parallel over pixel blocks, never inside an op: torch's intra-op threads cost
        # more than they give on (C, 4096) arrays.
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(threads) if on_cpu and threads > 1 else None
    tile_buf = None
    try:
        for ys, xs in tiles:
            if frame_level:
                block_np = np.asarray(probs[:, :])[:, :, None, None]  # T x C x 1 x 1
            else:
                block_np = np.asarray(probs[:, :, ys, xs])  # T x C x h x w
            th, tw = block_np.shape[2], block_np.shape[3]
            n = th * tw
            q_all = torch.from_numpy(np.ascontiguousarray(block_np)).reshape(t_len, c, n)
            # Write straight into `out` when it is an array and the tile a view of it
            # (whole rows), else through a tile buffer.
            target = tile_view(out, frame_level, ys, xs)
            if target is None:  # one buffer, reused while the tile size stays (as _smooth_numba does)
                if tile_buf is None or tile_buf.shape[2] != n:
                    tile_buf = np.empty((t_len, c, n), out.dtype)
                target = tile_buf
            block = n if not on_cpu else CPU_BLOCK
            jobs = [
                (q_all[:, :, j0 : j0 + block], target[:, :, j0 : j0 + block],
                 Place(frame_level, ys.start, xs.start, tw, j0))
                for j0 in range(0, n, block)
            ]
            if pool is not None and len(jobs) > 1:
                for f in [pool.submit(rec.block, *job) for job in jobs]:
                    f.result()
            else:
                for job in jobs:
                    rec.block(*job)
            store_tile(out, target, frame_level, ys, xs)
            block_np = q_all = target = jobs = None  # not held while the next tile is read
            if progress is not None:
                progress(1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if on_cpu:
            torch.set_num_threads(old_threads)
    return out



def _smooth_numba(probs: Any, out: Any, prior: np.ndarray, transition: np.ndarray,
                  tiles: list[tuple[slice, slice]], frame_level: bool,
                  min_prob: float, tolerance: float | None, threads: int,
                  progress: Callable[[int], None] | None, score_prior: str = "hmm") -> None:
    """`smooth` on the fused CPU kernel (stages/hmm/kernel.py), which reads (T, C, N)
    float32 scores and writes (T, C, N) float32 beliefs over a run of pixels of C-contiguous
    arrays. A C-contiguous float32 numpy input or output is used in place when every tile
    is whole rows (a run of its pixels); anything else goes through a tile buffer, cast
    tile by tile."""
    t_len, c = probs.shape[0], probs.shape[1]
    everything = (slice(0, 1), slice(0, 1)) if frame_level else (
        slice(0, probs.shape[2]), slice(0, probs.shape[3]))
    whole_rows = frame_level or all(xs == everything[1] for _, xs in tiles)
    q_all = tile_view(probs, frame_level, *everything, np.float32) if whole_rows else None
    o_all = tile_view(out, frame_level, *everything, np.float32) if whole_rows else None
    if q_all is not None and o_all is not None and np.shares_memory(q_all, o_all):
        o_all = None  # writing over the input would feed beliefs back as scores
    kernel = _Kernel(prior, transition, t_len, c, min_prob, tolerance, threads, score_prior)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the float16 casts
    # Tile buffers are reused, not reallocated per tile: fresh tile-sized arrays of
    # alternating sizes fragment the heap, and the process then holds well over the budget.
    q_buf = o_buf = raw_buf = cast_buf = None
    try:
        for ys, xs in tiles:
            tw = 1 if frame_level else xs.stop - xs.start
            n = 1 if frame_level else (ys.stop - ys.start) * tw
            j0 = 0 if frame_level else ys.start * tw  # the tile's first pixel (whole rows)
            if q_all is not None:
                q, q0 = q_all, j0
            else:
                raw_buf = read_tile(probs, raw_buf, frame_level, ys, xs)
                raw = raw_buf if raw_buf is not None else np.asarray(
                    probs[:, :] if frame_level else probs[:, :, ys, xs])
                q, q0 = raw.reshape(t_len, c, n), 0
                if q.dtype != np.float32 or not q.flags.c_contiguous:
                    q = q_buf = cast_into(q_buf, q, np.float32)
            if o_all is not None:
                o, o0 = o_all, j0
            else:
                if o_buf is None or o_buf.shape[2] != n:
                    o_buf = np.empty((t_len, c, n), np.float32)
                o, o0 = o_buf, 0
            if not kernel.run(q, o, q0, q0 + n, o0):
                # The kernel only flags (and stops): name the first bad frame and pixel of
                # the tile; should the torch check, summing in another order, pass a
                # borderline tile, run it unchecked.
                check_probs(torch.from_numpy(q[:, :, q0 : q0 + n]),
                            Place(frame_level, ys.start, xs.start, tw, 0), tolerance)
                kernel.run(q, o, q0, q0 + n, o0, check=False)
            if o_all is None:
                cast_buf = store_tile(out, o, frame_level, ys, xs, cast_buf)
            raw = q = o = None  # not held while the next tile is read
            if progress is not None:
                progress(1)
    finally:
        torch.set_num_threads(old_threads)
        kernel.close()



class _Kernel:
    """The numba kernel over pixel ranges, split into jobs for `threads` worker threads
    (the kernel releases the GIL), each with its own buffers."""

    def __init__(self, prior: np.ndarray, transition: np.ndarray, t_len: int, c: int,
                 min_prob: float, tolerance: float | None, threads: int,
                 score_prior: str = "hmm") -> None:
        from vidseg_cli.stages.hmm import kernel as hk

        self.hk = hk
        p = observation_prior(prior, transition, t_len, score_prior)  # T x C, Eq. (4)
        self.model = hk.model(prior, transition, emission_weights(p), start_weights(prior, p))
        self.shape = (t_len, c)
        self.block = hk.block_size(t_len, c)
        self.min_prob, self.tolerance = min_prob, tolerance
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.local = threading.local()

    def _one(self, q: np.ndarray, o: np.ndarray, j0: int, j1: int, o0: int, check: bool) -> bool:
        ws = getattr(self.local, "ws", None)
        if ws is None:
            ws = self.local.ws = self.hk.Workspace(*self.shape, self.block)
        return self.hk.forward_backward(q, o, self.model, self.min_prob,
                                        self.tolerance if check else None, ws, j0, j1, o0)

    def run(self, q: np.ndarray, o: np.ndarray, j0: int, j1: int, o0: int,
            check: bool = True) -> bool:
        """Beliefs of q's pixels j0..j1-1 into o's pixels from o0; False if the check
        failed somewhere (the output is then incomplete)."""
        n = j1 - j0
        if self.pool is None or n <= self.block:
            return self._one(q, o, j0, j1, o0, check)
        # Several jobs per thread, whole blocks each, so that a thread slowed by other
        # load doesn't hold up the rest.
        per = max(self.block, -(-n // (4 * self.threads)) // self.block * self.block)
        jobs = [self.pool.submit(self._one, q, o, a, min(j1, a + per), o0 + a - j0, check)
                for a in range(j0, j1, per)]
        return all([f.result() for f in jobs])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

