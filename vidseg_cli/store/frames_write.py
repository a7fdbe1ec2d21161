"""FramesWriter: frames streamed into a frames file (schema 2, store/frames.py's layouts),
with JPEG encoding spread over the codec threads."""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import h5py
import numpy as np

from vidseg_cli.core.signals import check as check_signals
from vidseg_cli.store.base import atomic_h5, provenance_attrs, set_attrs
from vidseg_cli.store.frames import (
    DEFAULT_JPEG_QUALITY,
    FRAME_CODECS,
    encode_jpeg,
    jpeg_params,
    lossless_options,
    pool,
    pool_threads,
)
from vidseg_cli.store.io import _StreamWriter

# 256 frames' heap references (16 bytes each) per chunk of a JPEG `frames` dataset.
_JPEG_CHUNK = 256


def _write_blobs(ds: h5py.Dataset, start: int, blobs: Sequence[np.ndarray]) -> None:
    """ds[start + i] = blobs[i], through h5py's low-level write: a third of the high-level
    indexing's cost per frame. One element per call, because a many-element write of
    variable-length data that fails (a full disk) crashes HDF5 2.0 instead of raising."""
    mspace = h5py.h5s.create_simple((1,))
    mtype = h5py.h5t.py_create(h5py.vlen_dtype(np.uint8))
    fspace = ds.id.get_space()
    one = np.empty(1, dtype=object)
    for i, b in enumerate(blobs):
        one[0] = b
        fspace.select_hyperslab((start + i,), (1,))
        ds.id.write(mspace, fspace, one, mtype=mtype)


class FramesWriter(_StreamWriter):
    """Streams frames into a frames file, so memory stays flat in video length.

    codec "jpeg": each frame is encoded (at `quality`) by the codec threads while the
    caller decodes the next ones, and stored as one variable-length uint8 element;
    "lz4" (the writer's default), "lzf", "gzip", "none": lossless, one compressed chunk
    per frame. The file appears under its final name only after `close()` succeeds (use
    as a context manager). An appended frame must not be modified afterwards: it may
    still be waiting for its encoder.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        video_id: str,
        fps: float,
        inputs: Sequence[Any] = (),
        attrs: Mapping[str, Any] | None = None,
        command: Sequence[str] | str | None = None,
        buffer_frames: int = 8,
        codec: str = "lz4",
        quality: int = DEFAULT_JPEG_QUALITY,
    ):
        if codec not in FRAME_CODECS:
            raise ValueError(f"unknown codec {codec!r} (known: {', '.join(FRAME_CODECS)})")
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        self.path = str(path)
        self.h, self.w = int(height), int(width)
        self.codec, self.quality = codec, int(quality)
        self._jpeg = codec == "jpeg"
        self._params = jpeg_params(self.quality) if self._jpeg else None
        self._root = provenance_attrs(
            kind="frames", video_id=video_id, num_frames=0, fps=fps, inputs=inputs, command=command
        )
        if attrs:
            self._root.update(attrs)
        self._ctx = atomic_h5(path)
        self._f = self._ctx.__enter__()
        try:
            if self._jpeg:
                self._frames = self._f.create_dataset(
                    "frames", shape=(0,), maxshape=(None,), dtype=h5py.vlen_dtype(np.uint8),
                    chunks=(_JPEG_CHUNK,),
                )
                self._frames.attrs["quality"] = self.quality
            else:
                self._frames = self._f.create_dataset(
                    "frames", shape=(0, self.h, self.w, 3), maxshape=(None, self.h, self.w, 3),
                    dtype=np.uint8, chunks=(1, self.h, self.w, 3), **lossless_options(codec),
                )
            self._frames.attrs["codec"] = codec
            self._frames.attrs["height"] = self.h
            self._frames.attrs["width"] = self.w
            self._times = self._f.create_dataset(
                "timestamps", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,)
            )
        except BaseException as e:
            self.abort(e)
            raise
        self._pending: collections.deque[tuple[Future, float]] = collections.deque()
        self._in_flight = 2 * pool_threads() + 2  # keeps every encoder busy, memory bounded
        self._buf: list[np.ndarray] = []
        self._tbuf: list[float] = []
        self._cap = buffer_frames
        self._written = 0  # frames in the file; `count` adds the buffered and pending ones

    @property
    def count(self) -> int:
        """Frames appended so far, written, being encoded or buffered."""
        return self._written + len(self._buf) + len(self._pending)

    def append(self, frame: np.ndarray, timestamp: float, bgr: bool = False) -> None:
        """Add one (H, W, 3) uint8 frame, RGB (or BGR, as OpenCV decodes, when `bgr`)."""
        check_signals()
        if frame.shape != (self.h, self.w, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {self.count}: expected uint8 ({self.h}, {self.w}, 3), "
                f"found {frame.dtype} {frame.shape}"
            )
        if self._jpeg:
            self._pending.append((pool().submit(encode_jpeg, frame, self._params, bgr),
                                  float(timestamp)))
            while len(self._pending) > self._in_flight:
                self._take()
            return
        if bgr:
            import cv2

            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self._buf.append(frame)
        self._tbuf.append(float(timestamp))
        if len(self._buf) >= self._cap:
            self._flush()

    def _take(self) -> None:
        """Move the oldest encoded frame into the write buffer (frames stay in order)."""
        fut, t = self._pending.popleft()
        self._buf.append(fut.result())
        self._tbuf.append(t)
        if len(self._buf) >= self._cap:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        self._f.space_guard.check(self.path)  # a full disk: stop now, not at close()
        n = len(self._buf)
        w = self._written
        self._frames.resize(w + n, axis=0)
        self._times.resize(w + n, axis=0)
        if self._jpeg:
            _write_blobs(self._frames, w, self._buf)
        else:
            self._frames[w : w + n] = np.stack(self._buf)
        self._times[w : w + n] = self._tbuf
        self._written += n
        self._buf.clear()
        self._tbuf.clear()

    def close(self) -> str:
        """Finish the file and move it into place; return its uid."""
        try:
            while self._pending:
                self._take()
            self._flush()
        except BaseException as e:
            self.abort(e)
            raise
        self._root["num_frames"] = self._written
        set_attrs(self._f, self._root)
        self._ctx.__exit__(None, None, None)
        return self._root["uid"]

    def abort(self, exc: BaseException | None = None) -> None:
        pending = getattr(self, "_pending", None)  # None: __init__ failed before making it
        while pending:
            pending.popleft()[0].cancel()
        super().abort(exc)
