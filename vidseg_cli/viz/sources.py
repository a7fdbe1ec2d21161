"""Finding what a picture is drawn with: the frames file of a prediction (given, paired by
video_id, or through its provenance), and the ground truth of a video (masks or temporal
segments) from one --gt path.

    gt = GroundTruth.load(path)         # any format evaluate reads
    masks, names = gt.masks(video_id)   # None when the video has none
    segs, labels, names = gt.segments(video_id)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError


def frames_index(paths: Sequence[str]) -> dict[str, Path]:
    """video_id -> frames file of the files and folders given to --frames."""
    from vidseg_cli import store
    from vidseg_cli.store.pairing import index_by_video_id

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".h5", ".hdf5")
                            and _kind(f) == "frames")
        elif not p.exists():
            raise InputError(p, "no such file or folder")
        else:
            kind = store.peek_kind(p)
            if kind != "frames":
                raise InputError(p, f"expected a frames file for --frames, found a {kind} file")
            files.append(p)
    return index_by_video_id(files, what="frames")


def _kind(path: Path) -> str | None:
    from vidseg_cli import store

    try:
        return store.peek_kind(path)
    except store.StoreError:
        return None


def frames_of(path: str | Path, attrs: dict[str, Any], index: dict[str, Path],
              nearby: dict[str, list[Path]] | None = None,
              size: tuple[int, int] | None = None) -> Path:
    """The frames file of a prediction: by its video_id among --frames (`index`), else the
    one its provenance was made from (store/lineage.py), else one of `nearby` (frames files
    found beside it, by video_id: the one of the prediction's `size` first); an InputError
    naming it when none."""
    from vidseg_cli.store.lineage import from_frames

    vid = str(attrs.get("video_id"))
    if index:
        if vid not in index:
            raise InputError(path, f"no frames file for video '{vid}' among --frames")
        return index[vid]
    found = from_frames(attrs, lambda rec, a: rec.path)
    if found is not None:
        return Path(found)
    candidates = (nearby or {}).get(vid, [])
    if candidates:
        return min(candidates, key=lambda c: _frame_size(c) != size)
    raise InputError(path, f"no frames file for video '{vid}': its provenance names none "
                           "that still exists; give it with --frames")


def _frame_size(path: Path) -> tuple[int, int] | None:
    from vidseg_cli import store

    try:
        with store.open_record(path, "frames") as rec:
            return tuple(rec["frames"].shape[1:3])
    except (store.StoreError, OSError):
        return None


_SEVERAL = re.compile(r"several subsets \(([^)]*)\)")


def load_temporal_all(path: Path, subset: str | None):
    """Temporal ground truth of `subset`, or, when None and the source holds several, of
    all of them together (a picture of one video needs no subset)."""
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    try:
        return load_temporal_gt(path, subset)
    except InputError as e:
        m = _SEVERAL.search(str(e)) if subset is None else None
        if not m:
            raise
    parts = [load_temporal_gt(path, s.strip()) for s in m.group(1).split(",")]
    first = parts[0]
    for p in parts[1:]:
        if p.classes != first.classes:
            raise InputError(path, "its subsets list different classes; choose one with --subset")
    first.video = np.concatenate([p.video for p in parts])
    first.segments = np.concatenate([p.segments for p in parts])
    first.label = np.concatenate([p.label for p in parts])
    for p in parts[1:]:
        first.video_info.update(p.video_info)
    first.subset = ", ".join(p.subset for p in parts)
    return first


@dataclass
class GroundTruth:
    """One --gt source: per-pixel masks by video (labels .h5, J-HMDB, DAVIS), or temporal
    segments in seconds (ActivityNet-style JSON, THUMOS14 folder, a synthetic set)."""

    path: str
    pixel: dict[str, tuple[str, Path]] = field(default_factory=dict)  # video_id -> source
    temporal: Any = None  # datasets.temporal_gt.TemporalGT

    @classmethod
    def load(cls, path: str, subset: str | None = None) -> GroundTruth:
        from vidseg_cli.api.gt_sources import gt_sources
        from vidseg_cli.store.pairing import read_video_ids

        gt = cls(str(path))
        for fmt, p in gt_sources([path]):
            if fmt == "temporal":
                gt.temporal = load_temporal_all(p, subset)
            elif fmt == "labels":
                gt.pixel[read_video_ids([p])[0]] = (fmt, p)
            elif fmt == "jhmdb":
                gt.pixel[p.stem] = (fmt, p)
            else:
                gt.pixel[p.name] = (fmt, p)
        return gt

    def masks(self, video_id: str) -> tuple[np.ndarray, list[str]] | None:
        """(T, H, W) class indices and their class names, or None."""
        from vidseg_cli.api.gt_sources import gt_videos

        if video_id not in self.pixel:
            return None
        for _, _, masks, names in gt_videos([self.pixel[video_id]], None, None, []):
            names = names or ["background", "foreground"]
            return np.asarray(masks), list(names)
        return None

    def segments(self, video_id: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """(N, 2) seconds, (N,) index into the class names, the class names; or None."""
        g = self.temporal
        if g is None or video_id not in set(g.videos):
            return None
        m = g.video == video_id
        return g.segments[m], g.label[m], list(g.classes)
