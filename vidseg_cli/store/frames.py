"""How frames files store their frames, and the reader that decodes them.

Schema 2 (written now) records the layout on the `frames` dataset's attributes: `codec`,
`height`, `width` (and `quality` for JPEG).

- `codec = "jpeg"`: `frames` holds one JPEG per frame as variable-length uint8, shape (T,),
  so a frame is read alone; the JPEGs are standard baseline files (YCbCr, 4:2:0) that any
  decoder reads (docs/frames.md shows plain h5py with OpenCV or Pillow).
- `codec` one of `lz4`, `lzf`, `gzip`, `none`: lossless, `frames` is (T, H, W, 3) uint8
  RGB, one compressed chunk per frame (lz4 is Blosc through hdf5plugin).

Schema 1 files have no `codec` attribute and the lossless layout. `FrameArray` reads
either as a (T, H, W, 3) uint8 RGB array; a batch of JPEG frames is decoded in parallel
threads (OpenCV releases the GIL while it decodes).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from vidseg_cli.store.base import StoreError

LOSSLESS_CODECS = ("lz4", "lzf", "gzip", "none")
FRAME_CODECS = ("jpeg", *LOSSLESS_CODECS)
# The highest quality whose frames.h5 stays within 1.2x the size of ffmpeg's `-q:v 2` JPEG
# folder on the 2,000-frame bikes benchmark video, at >= 38 dB PSNR against the decoded
# source (benchmarks/video/bench_frames_file.py records both figures).
DEFAULT_JPEG_QUALITY = 89


def lossless_options(codec: str) -> dict[str, Any]:
    """h5py create_dataset keywords for a lossless codec name.

    Frames are written as fast as a video decodes, so the lossless default is Blosc-LZ4
    (through hdf5plugin), about 4x faster to write than h5py's built-in lzf."""
    if codec == "lz4":
        import hdf5plugin

        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE))
    if codec == "lzf":
        return {"compression": "lzf"}
    if codec == "gzip":
        return {"compression": "gzip", "compression_opts": 1}
    if codec == "none":
        return {}
    raise ValueError(f"unknown codec {codec!r} (known: {', '.join(FRAME_CODECS)})")


def jpeg_params(quality: int) -> list[int]:
    """OpenCV's imencode parameters. Standard Huffman tables: optimal ones save about 3% of
    the bytes but double the encoder's time (0.42 against 0.95 ms a 640x272 frame)."""
    import cv2

    return [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 0]


def encode_jpeg(frame: np.ndarray, params: Sequence[int], bgr: bool = False) -> np.ndarray:
    """One (H, W, 3) uint8 frame (RGB, or BGR when `bgr`) -> its JPEG bytes as uint8."""
    import cv2

    if not bgr:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", frame, list(params))
    if not ok:
        raise ValueError("OpenCV could not encode a JPEG")
    return buf.reshape(-1)


# -- a thread pool shared by readers and writers ----------------------------------------
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    # A forked worker (--jobs) inherits the pool object but not its threads.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def pool_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def pool() -> ThreadPoolExecutor:
    """The process's codec threads (one per CPU, at most 8)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(pool_threads(), thread_name_prefix="vidseg-codec")
        return _pool


def parallel(fn: Callable[[int, int], None], n: int, min_per_thread: int = 2) -> None:
    """fn(lo, hi) over [0, n) in contiguous parts, one per codec thread; inline when small."""
    parts = min(pool_threads(), n // min_per_thread)
    if parts <= 1:
        fn(0, n)
        return
    bounds = np.linspace(0, n, parts + 1).astype(int)
    futures = [pool().submit(fn, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    for f in futures:
        f.result()


# -- layout ---------------------------------------------------------------------------
def frames_codec(ds: h5py.Dataset) -> str | None:
    """The `codec` attribute of a `frames` dataset; None for schema 1 (no attribute)."""
    c = ds.attrs.get("codec")
    return c.decode() if isinstance(c, bytes) else (None if c is None else str(c))


def decoded_layout(path: Any, ds: h5py.Dataset) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the frames a `frames` dataset decodes to, for validation: the
    stored ones for the lossless layout; (T, height, width, 3) uint8 for JPEG."""
    codec = frames_codec(ds)
    if codec is None or codec in LOSSLESS_CODECS:
        return ds.shape, ds.dtype
    if codec != "jpeg":
        raise StoreError(path, f"dataset 'frames': unknown codec {codec!r} "
                               f"(known: {', '.join(FRAME_CODECS)})")
    base = h5py.check_vlen_dtype(ds.dtype)
    if base is None or np.dtype(base) != np.uint8 or ds.ndim != 1:
        raise StoreError(path, f"dataset 'frames': JPEG frames are stored as (T,) variable-length "
                               f"uint8, found {ds.dtype} {ds.shape}")
    try:
        h, w = int(ds.attrs["height"]), int(ds.attrs["width"])
    except (KeyError, TypeError, ValueError):
        raise StoreError(path, "dataset 'frames': JPEG frames need integer 'height' and 'width' "
                               "attributes") from None
    return (ds.shape[0], h, w, 3), np.dtype(np.uint8)


class FrameArray:
    """The frames of a frames file as a (T, H, W, 3) uint8 RGB array, read on demand.

    Indexing takes what numpy takes on the first axis (an int, a slice, a list or array
    of indices in any order, with repeats) followed by any indexing of the frames
    themselves: `a[i]`, `a[5:9]`, `a[[7, 2, 7]]`, `a[i, 0, 0, 0]`, `a[()]` (all frames).
    Only the frames asked for are read and decoded.
    """

    def __init__(self, path: Any, ds: h5py.Dataset):
        self.path = str(path)
        self.dataset = ds  # as stored
        self.codec = frames_codec(ds) or "lossless"
        shape, _ = decoded_layout(path, ds)
        self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4
        self.quality = ds.attrs.get("quality")
        self.chunks = ds.chunks
        self.jpeg = self.codec == "jpeg"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        a = self[()]
        return a if dtype is None else a.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if key and key[0] is Ellipsis and len(key) == 1:
            key = ()
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(first, (int, np.integer)):
            i = int(first)
            if not -self.shape[0] <= i < self.shape[0]:
                raise IndexError(f"frame {i} out of range for {self.shape[0]} frames")
            frame = self._read(np.array([i % self.shape[0]]))[0]
            return frame[rest] if rest else frame
        if isinstance(first, slice):
            idx = np.arange(self.shape[0])[first]
        else:
            idx = np.asarray(first)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = idx.astype(np.int64).reshape(-1)
            if idx.size and (idx.min() < -self.shape[0] or idx.max() >= self.shape[0]):
                raise IndexError(f"frame index out of range for {self.shape[0]} frames")
            idx = idx % max(1, self.shape[0])
        out = self._read(idx)
        return out[(slice(None), *rest)] if rest else out

    def _read(self, idx: np.ndarray) -> np.ndarray:
        """Frames `idx` (any order, repeats) as (n, H, W, 3) uint8 RGB."""
        n = len(idx)
        out = np.empty((n, *self.shape[1:]), np.uint8)
        if n == 0:
            return out
        uniq, inv = np.unique(idx, return_inverse=True)
        contiguous = uniq[-1] - uniq[0] + 1 == len(uniq)
        if not self.jpeg:  # h5py wants increasing indices
            raw = (self.dataset[int(uniq[0]):int(uniq[-1]) + 1] if contiguous
                   else self.dataset[uniq.tolist()])
            out[:] = raw[inv]
            return out
        if len(uniq) == 1:
            blobs = [self.dataset[int(uniq[0])]]
        elif contiguous:
            blobs = list(self.dataset[int(uniq[0]):int(uniq[-1]) + 1])
        else:
            blobs = list(self.dataset[uniq.tolist()])
        if len(uniq) == n and (inv == np.arange(n)).all():
            self._decode(blobs, uniq, out)
            return out
        frames = np.empty((len(uniq), *self.shape[1:]), np.uint8)
        self._decode(blobs, uniq, frames)
        out[:] = frames[inv]
        return out

    def _decode(self, blobs: list[np.ndarray], which: np.ndarray, out: np.ndarray) -> None:
        import cv2

        h, w = self.shape[1:3]

        def part(lo: int, hi: int) -> None:
            for k in range(lo, hi):
                bgr = cv2.imdecode(np.asarray(blobs[k], np.uint8), cv2.IMREAD_COLOR)
                if bgr is None or bgr.shape != (h, w, 3):
                    found = "no image" if bgr is None else f"{bgr.shape[1]}x{bgr.shape[0]}"
                    raise StoreError(self.path, f"frame {int(which[k])}: not a {w}x{h} JPEG "
                                                f"({found})")
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out[k])

        parallel(part, len(blobs))
