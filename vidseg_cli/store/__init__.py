"""The HDF5 contract: one validating reader and one atomic writer per kind.

    from vidseg_cli import store
    store.write_detections(path, segments, labels, scores, class_names=..., video_id=..., ...)
    rec = store.read_detections(path)      # Record: .attrs, ["segments"], .class_names
    with store.ScoresWriter(path, (T, C, H, W), class_names=..., ...) as w:  # streamed
        w[t] = probs_t
    with store.open_record(path, "scores") as rec:   # lazy: rec["probs"] is an h5py.Dataset
        ...

Every reader raises StoreError (one line: file, expected, found) on a contract breach.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.store.base import (
    SCHEMA_VERSION,
    StoreError,
    atomic_h5,
    input_record,
    open_checked,
    peek_kind,
)
from vidseg_cli.store.frames import FRAME_CODECS, FrameArray
from vidseg_cli.store.frames_write import FramesWriter
from vidseg_cli.store.io import (
    Record,
    ScoresWriter,
    open_record,
    read,
    scores_layout,
    write,
)
from vidseg_cli.store.kinds import KINDS

__all__ = [
    "FRAME_CODECS",
    "KINDS",
    "FrameArray",
    "SCHEMA_VERSION",
    "FramesWriter",
    "Record",
    "ScoresWriter",
    "StoreError",
    "atomic_h5",
    "input_record",
    "open_checked",
    "open_record",
    "output_name",
    "peek_kind",
    "scores_layout",
    "read",
    "video_id_of",
    "write",
]

PathLike = str | os.PathLike


def output_name(video_id: str, kind: str) -> str:
    """The file name of a kind inside an output folder (DESIGN.md: `<video_id>.<kind>.h5`)."""
    return f"{video_id}.{kind}.h5"


def video_id_of(path: str | os.PathLike) -> str:
    """A video's id from its path: the file stem, the folder name for frame folders, and the
    part before `.<kind>.h5` for our own files."""
    p = Path(path)
    name = p.name.rstrip("/")
    if p.is_dir():
        return name
    for suffix in (".h5", ".hdf5"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            for k in KINDS:
                if stem.endswith("." + k):
                    return stem[: -len(k) - 1]
            return stem
    return p.stem



# -- frames ---------------------------------------------------------------------------
def read_frames(path: PathLike, load_frames: bool = False) -> Record:
    """Timestamps always; the (T,H,W,3) uint8 RGB frames, decoded, only if asked (use
    open_record to stream: its `frames` is a FrameArray)."""
    names = ["timestamps", "frames"] if load_frames else ["timestamps"]
    return read(path, "frames", names)


# -- features -------------------------------------------------------------------------
def write_features(path: PathLike, features: np.ndarray, centers: np.ndarray, **meta: Any) -> str:
    return write(
        path,
        "features",
        {"features": np.asarray(features, np.float32), "centers": np.asarray(centers, np.int64)},
        **meta,
    )


def read_features(path: PathLike) -> Record:
    return read(path, "features")


# -- scores (per pixel) and frame_scores ----------------------------------------------
def write_scores(path: PathLike, probs: np.ndarray, extra: Mapping[str, np.ndarray] | None = None,
                 **meta: Any) -> str:
    """A scores file laid out as `scores_layout` says (ScoresWriter writes the same); `extra`:
    the kind's optional datasets (e.g. a Sep3D head's action_scores), written whole."""
    probs = np.asarray(probs)
    dtype, chunks = scores_layout(probs.shape, probs.dtype)
    data = {"probs": probs.astype(dtype, copy=False), **(extra or {})}
    return write(path, "scores", data, compression="lzf",
                 chunks={"probs": chunks} if chunks else None, **meta)


def read_scores(path: PathLike) -> Record:
    return read(path, "scores")


def write_frame_scores(path: PathLike, probs: np.ndarray, **meta: Any) -> str:
    return write(path, "frame_scores", {"probs": np.asarray(probs, np.float32)}, **meta)


def read_frame_scores(path: PathLike) -> Record:
    return read(path, "frame_scores")


# -- labels ---------------------------------------------------------------------------
def write_labels(path: PathLike, labels: np.ndarray, **meta: Any) -> str:
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise StoreError(path, "labels must fit in uint8 (0..255)")
        labels = labels.astype(np.uint8)
    chunks = {"labels": (1, *labels.shape[1:])} if labels.ndim == 3 and labels.size else None
    return write(path, "labels", {"labels": labels}, compression="lzf", chunks=chunks, **meta)


def read_labels(path: PathLike) -> Record:
    return read(path, "labels")


# -- proposals and detections ---------------------------------------------------------
def write_proposals(path: PathLike, segments: np.ndarray, scores: np.ndarray, **meta: Any) -> str:
    return write(
        path,
        "proposals",
        {
            "segments": np.asarray(segments, np.float64).reshape(-1, 2),
            "scores": np.asarray(scores, np.float64).reshape(-1),
        },
        **meta,
    )


def read_proposals(path: PathLike) -> Record:
    return read(path, "proposals")


def write_detections(
    path: PathLike, segments: np.ndarray, labels: np.ndarray, scores: np.ndarray, **meta: Any
) -> str:
    return write(
        path,
        "detections",
        {
            "segments": np.asarray(segments, np.float64).reshape(-1, 2),
            "labels": np.asarray(labels, np.int64).reshape(-1),
            "scores": np.asarray(scores, np.float64).reshape(-1),
        },
        **meta,
    )


def read_detections(path: PathLike) -> Record:
    return read(path, "detections")


# -- hmm ------------------------------------------------------------------------------
def write_hmm(
    path: PathLike, prior: np.ndarray, transition: np.ndarray, class_names: Sequence[str], **meta: Any
) -> str:
    meta.setdefault("video_id", "")
    meta.setdefault("num_frames", 0)
    meta.setdefault("fps", 0.0)
    return write(
        path,
        "hmm",
        {"prior": np.asarray(prior, np.float64), "transition": np.asarray(transition, np.float64)},
        class_names=class_names,
        **meta,
    )


def read_hmm(path: PathLike) -> Record:
    return read(path, "hmm")
