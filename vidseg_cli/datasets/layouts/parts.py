"""The parts of a detected layout that take more than a path: J-HMDB's mask files, frame
folders and split files, DAVIS's split files, and a folder's videos by video id."""

from __future__ import annotations

import re
from pathlib import Path

from vidseg_cli.datasets import masks as mio
from vidseg_cli.datasets.layouts.detect import Layout
from vidseg_cli.errors import InputError, read_lines
from vidseg_cli.video.decode import IMAGE_SUFFIXES, VIDEO_SUFFIXES

__all__ = ["davis_split", "find_video", "jhmdb_frames", "jhmdb_masks", "jhmdb_splits"]


def jhmdb_masks(layout: Layout) -> dict[str, tuple[str, Path]]:
    """`video_id -> (class folder, .mat)` of a J-HMDB layout: `CLASS/VIDEO.mat` (two files of
    one video are an error), the dataset's `CLASS/VIDEO/puppet_mask.mat`, one class folder's
    `VIDEO.mat`, or one file."""
    root = layout.masks
    if root is None:
        raise InputError(layout.path, "no puppet_mask folder")
    if root.is_file():
        return {root.stem: (root.parent.name, root)}
    out: dict[str, tuple[str, Path]] = {}
    if next(root.glob("*/*.mat"), None) is not None:
        out = {vid: (p.parent.name, p) for vid, p in mio.jhmdb_videos(root).items()}
    elif mats := sorted(root.glob("*.mat")):  # one class folder
        return {m.stem: (root.name, m) for m in mats}
    for mat in sorted(root.glob("*/*/puppet_mask.mat")):
        out.setdefault(mat.parent.name, (mat.parent.parent.name, mat))
    if not out:
        raise InputError(root, "no CLASS/VIDEO.mat files (expected J-HMDB's puppet_mask layout)")
    return out


def jhmdb_frames(layout: Layout, cls: str, vid: str) -> Path | None:
    """A J-HMDB video's frame folder: `Rename_Images/CLASS/VIDEO/`, `frames/CLASS/VIDEO/` or
    `frames/VIDEO/`."""
    if layout.frames is None:
        return None
    for cand in (layout.frames / cls / vid, layout.frames / vid):
        if cand.is_dir():
            return cand
    return None


def jhmdb_splits(layout: Layout) -> dict[int, dict[str, tuple[set[str], set[str]]]]:
    """`N -> {split file: (train videos, test videos)}` from `splits/CLASS_test_splitN.txt`
    (lines `VIDEO.avi 1` for train, `2` for test)."""
    out: dict[int, dict[str, tuple[set[str], set[str]]]] = {}
    if layout.splits is None:
        return out
    for f in sorted(layout.splits.glob("*_split*.txt")):
        m = re.search(r"_split(\d+)$", f.stem)
        if not m:
            continue
        train: set[str] = set()
        test: set[str] = set()
        for line in read_lines(f):
            parts = line.split()
            if len(parts) != 2:
                continue
            name = re.sub(r"\.avi$", "", parts[0])
            (train if parts[1] == "1" else test).add(name)
        out.setdefault(int(m.group(1)), {})[str(f)] = (train, test)
    return out


def davis_split(layout: Layout, name: str) -> tuple[Path, set[str]] | None:
    """(file, sequences) of DAVIS's `ImageSets/.../<name>.txt`, whose lines name a sequence
    or a frame path in it (`/JPEGImages/480p/bear/00000.jpg ...`); None when absent."""
    if layout.splits is None:
        return None
    f = layout.splits / f"{name}.txt"
    if not f.is_file():
        return None
    seqs = set()
    for line in read_lines(f):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in line.split()[0].split("/") if p]
        seqs.add(parts[-2] if len(parts) >= 2 else parts[0])
    return f, seqs


def find_video(folder: Path, vid: str) -> Path | None:
    """A video's file (`<id>.mp4`, any decodable container) or frame folder (`<id>/`)."""
    for suffix in VIDEO_SUFFIXES:
        for cand in (folder / f"{vid}{suffix}", folder / f"{vid}{suffix.upper()}"):
            if cand.is_file():
                return cand
    d = folder / vid
    if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
        return d
    return None
