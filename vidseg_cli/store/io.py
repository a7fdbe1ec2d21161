"""Generic validated reading and atomic writing of any kind; the streaming scores writer
(frames have theirs in store/frames_write.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc/LZ4 filters frames files are read with)
import numpy as np

from vidseg_cli.store.base import (
    StoreError,
    atomic_h5,
    check_shapes,
    open_checked,
    provenance_attrs,
    set_attrs,
    validate_open_file,
)
from vidseg_cli.store.frames import FrameArray
from vidseg_cli.store.kinds import KINDS


@dataclass
class Record:
    """A validated file: its root attributes and its datasets.

    From `read()` the datasets are numpy arrays; from `open_record()` they are lazy
    h5py datasets, valid while the context is open (slice them to read), except a frames
    file's `frames`: a `store.frames.FrameArray`, which decodes what is sliced.
    """

    path: str
    kind: str
    attrs: dict[str, Any]
    arrays: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    @property
    def video_id(self) -> str:
        return self.attrs["video_id"]

    @property
    def num_frames(self) -> int:
        return int(self.attrs["num_frames"])

    @property
    def fps(self) -> float:
        return float(self.attrs["fps"])

    @property
    def uid(self) -> str:
        return self.attrs["uid"]

    @property
    def class_names(self) -> list[str] | None:
        return self.attrs.get("class_names")


@contextlib.contextmanager
def open_record(path: str | os.PathLike, kind: str | None = None) -> Iterator[Record]:
    """Validate and open lazily; datasets are h5py.Dataset objects (a frames file's
    `frames` a FrameArray, (T, H, W, 3) uint8 RGB whatever the codec)."""
    with open_checked(path, kind) as (f, attrs):
        arrays: dict[str, Any] = {k: v for k, v in f.items() if isinstance(v, h5py.Dataset)}
        if attrs["vidseg_kind"] == "frames":
            arrays["frames"] = FrameArray(path, arrays["frames"])
        yield Record(str(path), attrs["vidseg_kind"], attrs, arrays)


def read(
    path: str | os.PathLike, kind: str | None = None, datasets: Sequence[str] | None = None
) -> Record:
    """Validate and load a file (all datasets, or only `datasets`) into memory."""
    with open_record(path, kind) as rec:
        names = list(rec.arrays) if datasets is None else list(datasets)
        for n in names:
            if n not in rec.arrays:
                raise StoreError(path, f"missing dataset '{n}'")
        arrays = {n: rec.arrays[n][()] for n in names}
        return Record(rec.path, rec.kind, rec.attrs, arrays)


def write(
    path: str | os.PathLike,
    kind: str,
    arrays: Mapping[str, np.ndarray],
    *,
    video_id: str,
    num_frames: int,
    fps: float,
    inputs: Sequence[Any] = (),
    class_names: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
    command: Sequence[str] | str | None = None,
    compression: str | None = "gzip",
    chunks: Mapping[str, tuple[int, ...]] | None = None,
) -> str:
    """Check `arrays` against the kind's spec and write them atomically; return the uid.

    A mismatch raises StoreError naming `path` before anything is written.
    """
    spec = KINDS[kind]
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    unknown = set(arrays) - set(spec.datasets)
    if unknown:
        raise StoreError(path, f"a {kind} file has no dataset(s) {sorted(unknown)}")
    bound: dict[str, int] = {}
    if spec.binds_num_frames:
        bound[spec.binds_num_frames] = int(num_frames)
    if spec.needs_class_names:
        if not class_names:
            raise StoreError(path, f"a {kind} file needs class_names")
        bound["C"] = len(class_names)
    check_shapes(
        path, spec, {k: v.shape for k, v in arrays.items()}, {k: v.dtype for k, v in arrays.items()}, bound,
        attrs=dict(attrs or {}),
    )
    root = provenance_attrs(
        kind=kind,
        video_id=video_id,
        num_frames=num_frames,
        fps=fps,
        inputs=inputs,
        command=command,
        class_names=class_names,
    )
    if attrs:
        root.update(attrs)
    with atomic_h5(path) as f:
        set_attrs(f, root)
        for name, arr in arrays.items():
            c = (chunks or {}).get(name)
            comp = compression if arr.size > 0 else None
            f.create_dataset(
                name,
                data=arr,
                chunks=c if c is not None else (True if comp else None),
                compression=comp,
            )
    return root["uid"]


def scores_layout(shape: Sequence[int], dtype: Any,
                  chunks: Sequence[int] | None = None) -> tuple[np.dtype, tuple[int, ...] | None]:
    """How every scores file stores `probs`, whole (`write_scores`) or streamed
    (`ScoresWriter`): float16 kept, anything else float32; lzf chunks of one frame, (1, C,
    H, W), or the given T, C, H, W sizes clipped to the shape; no chunks when it is empty
    (or not T x C x H x W, which the writers refuse). Returns (dtype, chunks)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float16, np.float32):
        dtype = np.dtype(np.float32)
    if len(shape) != 4 or int(np.prod(shape)) == 0:  # `write` names a wrong shape
        return dtype, None
    want = tuple(chunks) if chunks is not None else (1, *shape[1:])
    if len(want) != 4:
        raise ValueError(f"chunks must have 4 sizes, got {want}")
    return dtype, tuple(max(1, min(int(c), int(n))) for c, n in zip(want, shape))


class _StreamWriter:
    """What the streaming writers share: an `atomic_h5` temporary file (`self._ctx`,
    opened by the subclass) that becomes the output only when `close()` succeeds, and is
    removed on `abort()` or an exception inside a `with` block."""

    _ctx: Any

    def close(self) -> str:
        raise NotImplementedError

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the temporary file."""
        err = exc or RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self._ctx.__exit__(type(err), err, None)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb) -> None:
        if et is None:
            self.close()
        else:
            self.abort(ev)


class ScoresWriter(_StreamWriter):
    """Streams per-pixel class scores (kind `scores`, `probs` (T, C, H, W)) into a file, so
    that a stage never holds the whole volume: the dataset is created up front, chunked
    and compressed as `write_scores` does (lzf, float16 kept, anything else float32), and
    callers assign slices (`writer[t] = frame`, `writer[:, :, ys, xs] = tile`, or the
    h5py dataset `writer.probs` handed to code that writes into arrays). The file appears
    under its final name only after `close()` has checked that every chunk was written
    and validated the file as a reader would; on an error (use as a context manager) the
    temporary file is removed.

    chunks: (1, C, H, W) by default (one frame, as write_scores); a writer of spatial
    tiles passes the tile's shape, so that each write fills whole chunks (a partly
    written compressed chunk is read back and recompressed on every later write to it).
    extra: the kind's optional datasets (Sep3D's `action_scores`), written whole up front;
    their attributes (`action_names`) go in `attrs`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: Sequence[int],
        *,
        video_id: str,
        fps: float,
        class_names: Sequence[str],
        dtype: Any = np.float32,
        chunks: Sequence[int] | None = None,
        inputs: Sequence[Any] = (),
        attrs: Mapping[str, Any] | None = None,
        command: Sequence[str] | str | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ):
        self.path = str(path)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 4 or min(shape, default=0) < 0:
            raise StoreError(path, f"scores have shape (T, C, H, W), got {shape}")
        if not class_names or len(class_names) != shape[1]:
            n = len(class_names or [])
            raise StoreError(path, f"{shape[1]} classes in the scores, {n} class names")
        try:
            dtype, chunks = scores_layout(shape, dtype, chunks)
        except ValueError as e:
            raise StoreError(path, str(e)) from None
        size = int(np.prod(shape))
        self._root = provenance_attrs(
            kind="scores", video_id=video_id, num_frames=shape[0], fps=fps, inputs=inputs,
            command=command, class_names=class_names,
        )
        if attrs:
            self._root.update(attrs)
        self._ctx = atomic_h5(path)
        self._f = self._ctx.__enter__()
        try:
            self.probs = self._f.create_dataset(
                "probs", shape=shape, dtype=dtype, chunks=chunks,
                compression="lzf" if size else None,
            )
            for name, arr in (extra or {}).items():  # small optional datasets, written whole
                self._f.create_dataset(name, data=np.asarray(arr))
        except BaseException as e:
            self.abort(e)
            raise
        self.shape, self.dtype, self.chunks = shape, dtype, chunks

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.probs[key] = value

    def _expected_chunks(self) -> int:
        if self.chunks is None:
            return 0
        return int(np.prod([-(-s // c) for s, c in zip(self.shape, self.chunks)]))

    def close(self) -> str:
        """Check, validate, and move the file into place; return its uid. On a problem
        (StoreError) the temporary file is removed."""
        try:
            written, want = self.probs.id.get_num_chunks(), self._expected_chunks()
            if written < want:
                raise StoreError(self.path, f"incomplete scores: {written} of {want} chunks of "
                                            "'probs' were written")
            set_attrs(self._f, self._root)
            validate_open_file(self.path, self._f, "scores")
        except BaseException as e:
            self.abort(e)
            raise
        self._ctx.__exit__(None, None, None)
        return self._root["uid"]
