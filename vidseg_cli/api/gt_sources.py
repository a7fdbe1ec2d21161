"""The ground truth hmm-fit counts, as per-video label sequences: labels .h5 files, J-HMDB
puppet masks, DAVIS mask folders, and temporal ground truth (ActivityNet-style JSON,
THUMOS14 folders) rasterized to one label per frame.

    notes: list[str] = []
    for src, video_id, labels, class_names in gt_videos(gt_sources(paths), subset, fps, notes):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli import store
from vidseg_cli.datasets import masks as mio
from vidseg_cli.datasets import temporal_gt as tg
from vidseg_cli.datasets.layouts.detect import sniff
from vidseg_cli.datasets.layouts.parts import jhmdb_masks
from vidseg_cli.errors import InputError
from vidseg_cli.metrics.frame_ap import rasterize


def gt_sources(paths: list[str]) -> list[tuple[str, Path]]:
    """(format, path) of every ground-truth video or file: labels .h5, J-HMDB .mat, DAVIS
    sequence folders, temporal ground truth (ActivityNet JSON, THUMOS14 folder); the
    layout is datasets/layouts/detect.py's."""
    out: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        layout = sniff(p)
        if p.is_file() and layout is None:
            raise InputError(
                p, "expected labels .h5, J-HMDB .mat, ActivityNet-style .json ground "
                "truth, or a folder of them"
            )
        if layout is not None and layout.temporal:
            out.append(("temporal", p))
        elif p.is_file():
            out.append((layout.kind, p))
        elif layout is not None and layout.kind == "labels":
            out.extend(("labels", f) for f in mio.find_h5_files(p))
        elif layout is not None and layout.kind == "jhmdb":
            out.extend(("jhmdb", f) for _, f in jhmdb_masks(layout).values())
        else:
            out.extend(("davis", f) for f in mio.davis_sequences(p).values())
    return out


def _temporal_videos(path: Path, subset: str | None, fps: float | None,
                     notes: list[str]) -> Iterator[tuple[str, Any, list[str]]]:
    """Per-frame labels (T,) of every video of temporal ground truth: 0 background,
    k+1 for class k, frame t at time t / fps (metrics.frame_ap.rasterize, as frame AP
    counts positives). Where segments of two classes overlap, the first class wins;
    Ambiguous segments count as background.

    The frame rate is the video's own (synthetic ActivityNet-style JSON carries it) or
    --fps; the length is the video's num_frames, else duration x fps, else (THUMOS14 text
    has neither) up to the end of its last segment: `notes` says how many videos.
    """
    gt = tg.load_temporal_gt(path, subset)
    names = ["background", *gt.classes]
    truncated = overlapping = 0
    for video in gt.videos:
        info = gt.video_info.get(video, {})
        rate = float(info.get("fps") or fps or 0)
        if rate <= 0:
            raise InputError(path, f"video '{video}': no frame rate in the ground truth; give --fps")
        m = gt.video == video
        segs, labs = gt.segments[m], gt.label[m]
        if info.get("num_frames"):
            t = int(info["num_frames"])
        elif info.get("duration"):
            t = int(round(float(info["duration"]) * rate))
        else:
            t = int(np.ceil(segs[:, 1].max() * rate)) if len(segs) else 0
            truncated += 1
        pos = rasterize(t, rate, segs, labs, len(gt.classes))  # T x C bool
        overlapping += int((pos.sum(axis=1) > 1).any())
        labels = np.where(pos.any(axis=1), pos.argmax(axis=1) + 1, 0).astype(np.int64)  # T
        yield video, labels, names
    if truncated:
        notes.append(f"{path}: {truncated} video(s) have no duration; counted up to their last segment")
    if overlapping:
        notes.append(f"{path}: {overlapping} video(s) have overlapping segments of different "
                     "classes; the first class in the class list wins")


def gt_videos(sources: list[tuple[str, Path]], subset: str | None, fps: float | None,
              notes: list[str]) -> Iterator[tuple[Path, str, Any, list[str]]]:
    """(source file, video id, labels (T, ...), class names) of every ground-truth video."""
    for fmt, p in sources:
        if fmt == "labels":
            kind = store.peek_kind(p)
            if kind != "labels":
                raise InputError(p, f"expected a labels file (ground truth), found a {kind} file")
            v = mio.read_labels_file(p)
            yield p, v.video_id, v.masks, list(v.class_names or [])
        elif fmt == "jhmdb":
            v = mio.read_jhmdb_mat(p)
            yield p, v.video_id, v.masks, list(v.class_names or mio.JHMDB_CLASS_NAMES)
        elif fmt == "davis":
            v = mio.read_davis_sequence(p)
            yield p, v.video_id, v.masks, ["background", "foreground"]
        else:
            for vid, labels, names in _temporal_videos(p, subset, fps, notes):
                yield p, vid, labels, names
