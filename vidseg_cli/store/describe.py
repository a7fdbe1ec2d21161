"""A JSON-able description of a vidseg file (what `vidseg inspect` prints)."""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from vidseg_cli.store.frames import FrameArray, frames_codec
from vidseg_cli.store.io import open_record

# Statistics read at most this many elements per dataset, so inspecting a
# multi-gigabyte frames or scores file stays instant.
_SAMPLE_ELEMENTS = 4_000_000


def _sample(ds: h5py.Dataset) -> np.ndarray:
    if ds.size <= _SAMPLE_ELEMENTS or ds.ndim == 0:
        return ds[()]
    per_row = max(1, ds.size // ds.shape[0])
    rows = max(1, _SAMPLE_ELEMENTS // per_row)
    idx = np.unique(np.linspace(0, ds.shape[0] - 1, num=min(rows, ds.shape[0])).astype(int))
    return ds[idx]  # evenly spaced rows along the first axis (frames, segments)


# HDF5 filters that are not compression (shuffle, fletcher32 checksums), and hdf5plugin's
# Blosc (registered filter 32001), whose 7th parameter is the compressor in Blosc's order.
_NOT_COMPRESSION = {h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32}
_BLOSC = 32001
_BLOSC_CODECS = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")


def _compression(ds: h5py.Dataset) -> str | None:
    """h5py's name for its own filters (gzip, lzf, szip); for a plugin filter, which h5py
    calls "unknown", its name from the file: blosc/<compressor> for Blosc."""
    if ds.compression != "unknown":
        return ds.compression
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, _, opts, name = plist.get_filter(i)
        if code in _NOT_COMPRESSION:
            continue
        if code == _BLOSC:
            k = opts[6] if len(opts) > 6 else -1
            return f"blosc/{_BLOSC_CODECS[k]}" if 0 <= k < len(_BLOSC_CODECS) else "blosc"
        return name.decode(errors="replace") if name else f"filter {code}"
    return "unknown"


def _heap_bytes(ds: h5py.Dataset) -> int:
    """Bytes of a variable-length dataset's elements (they live outside its chunks)."""
    return int(sum(len(b) for i in range(0, ds.shape[0], 1024) for b in ds[i:i + 1024]))


def _stats(ds: h5py.Dataset) -> dict[str, Any]:
    if ds.size == 0:
        return {"count": 0}
    a = _sample(ds)
    out: dict[str, Any] = {}
    if a.size != ds.size:
        out["sampled"] = int(a.size)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            out["non_finite"] = int((~finite).sum())
        a = a[finite]
        if a.size == 0:
            return out
    out.update(min=float(a.min()), max=float(a.max()), mean=float(a.mean(dtype=np.float64)))
    return out


def _summary(kind: str, rec, attrs: dict) -> dict[str, Any]:
    """A few facts per kind that a user looks for first."""
    s: dict[str, Any] = {}
    fps = float(attrs.get("fps") or 0)
    if kind == "frames":
        t = rec["timestamps"][()]
        _, h, w, _ = rec["frames"].shape
        s["frame_size"] = f"{w}x{h}"
        if t.size:
            s["time_span_s"] = [float(t[0]), float(t[-1])]
        if fps:
            s["duration_s"] = round(int(attrs["num_frames"]) / fps, 6)
    elif kind in ("detections", "proposals"):
        seg = rec["segments"][()]
        s["count"] = int(seg.shape[0])
        if seg.size:
            length = seg[:, 1] - seg[:, 0]
            s["length_frames"] = {"min": float(length.min()), "max": float(length.max())}
        if kind == "detections" and seg.size:
            lab = rec["labels"][()]
            names = attrs.get("class_names") or []
            counts = np.bincount(lab.astype(int), minlength=len(names))
            s["per_class"] = {
                (names[i] if i < len(names) else str(i)): int(c) for i, c in enumerate(counts) if c
            }
    elif kind == "labels":
        lab = _sample(rec["labels"])
        names = attrs.get("class_names") or []
        counts = np.bincount(lab.ravel(), minlength=len(names))
        total = counts.sum()
        s["pixel_share"] = {
            (names[i] if i < len(names) else str(i)): round(float(c / total), 6)
            for i, c in enumerate(counts) if c
        }
    elif kind in ("scores", "frame_scores"):
        p = _sample(rec["probs"]).astype(np.float64)
        if p.size:
            s["argmax_share"] = {}
            names = attrs.get("class_names") or []
            counts = np.bincount(p.argmax(axis=1).ravel(), minlength=p.shape[1])
            total = counts.sum()
            for i, c in enumerate(counts):
                if c:
                    s["argmax_share"][names[i] if i < len(names) else str(i)] = round(float(c / total), 6)
            sums = p.sum(axis=1)
            s["sum_over_classes"] = {"min": float(sums.min()), "max": float(sums.max())}
    elif kind == "hmm":
        tr = rec["transition"][()]
        s["row_sums"] = {"min": float(tr.sum(1).min()), "max": float(tr.sum(1).max())}
        s["mean_self_transition"] = float(np.diag(tr).mean())
    return s


def describe(path: str | os.PathLike, stats: bool = True) -> dict[str, Any]:
    with open_record(path) as rec:
        attrs = dict(rec.attrs)
        datasets = {}
        for name, ds in rec.arrays.items():
            d = {
                "shape": list(ds.shape),
                "dtype": str(ds.dtype),
                "chunks": list(ds.chunks) if ds.chunks else None,
            }
            if isinstance(ds, FrameArray):  # shape and dtype as decoded; how it is stored
                stored = ds.dataset
                d["compression"] = (f"jpeg/q{ds.quality}" if ds.jpeg else _compression(stored))
                d["chunks"] = None if ds.jpeg else d["chunks"]
                d["stored"] = {"codec": frames_codec(stored), "shape": list(stored.shape),
                               "dtype": "vlen uint8" if ds.jpeg else str(stored.dtype),
                               "chunks": list(stored.chunks) if stored.chunks else None,
                               "bytes": int(stored.id.get_storage_size()) + (
                                   _heap_bytes(stored) if ds.jpeg else 0)}
            else:
                d["compression"] = _compression(ds)
            if stats:
                d["stats"] = _stats(ds)
            datasets[name] = d
        out = {
            "path": str(path),
            "kind": rec.kind,
            "schema": attrs.get("vidseg_schema"),
            "attrs": attrs,
            "datasets": datasets,
        }
        if stats:
            out["summary"] = _summary(rec.kind, rec.arrays, attrs)
        return out
