"""Temporal predictions from every format `vidseg evaluate` reads, in seconds.

- our HDF5 `detections` and `proposals` files (one per video; a folder or a list):
  segments are half-open frame intervals [start, end); seconds = frame / fps by default
  (`time_base="fps"`, the robust choice: it needs nothing but the file itself). With
  `time_base="timestamps"` a frame's time is `timestamps[frame]` of the frames file the
  detections were made from, found through the provenance `inputs` (followed through
  intermediate files, each checked by uid) - right for clips cut with `--start` or with
  variable frame rate; the end frame T of a video maps to timestamps[T-1] + 1/fps.
- ActivityNet-style result JSON `{"results": {video: [{"segment": [s, e], "label": name,
  "score": x}]}}` (entries without "label" are proposals);
- THUMOS14 detection text, `video start end class_index score` per line (the format
  TH14evalDet reads; a ".mp4" in the video name is dropped, as it does);
- our `frame_scores` files, for frame-level AP;
- other tools' pickled results (ActionFormer's eval_results.pkl, mmaction2's dumps), read
  as plain data only: datasets/tool_results.py.

Record-level problems (a non-finite score, end <= start, an empty file) are counted in
`Predictions.issues`, never dropped here: the evaluation decides, as the official tools do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidseg_cli.datasets.layouts.detect import is_mask_folder
from vidseg_cli.errors import InputError, read_lines

__all__ = [
    "FrameScores",
    "Issues",
    "Predictions",
    "TEMPORAL_KINDS",
    "PIXEL_KINDS",
    "classify_inputs",
    "read_predictions",
]

TEMPORAL_KINDS = ("detections", "proposals", "frame_scores")
PIXEL_KINDS = ("labels", "scores")
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class Issues:
    """Counts of questionable records by kind, with the files they were found in and an
    example, so each becomes one warning line (or one error under --strict)."""

    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, n: int, path: str, example: str = "") -> None:
        if n <= 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + int(n)
        fl = self.files.setdefault(kind, [])
        if path not in fl:
            fl.append(path)
        self.examples.setdefault(kind, example)

    def where(self, kind: str) -> str:
        fl = self.files[kind]
        return fl[0] if len(fl) == 1 else f"{fl[0]} (and {len(fl) - 1} more files)"

    def __bool__(self) -> bool:
        return bool(self.counts)


@dataclass
class Predictions:
    """Temporal predictions in input order (the official scorers break ties by it)."""

    kind: str  # "detections" | "proposals"
    sources: list[str]
    video: np.ndarray  # (N,) str
    segments: np.ndarray  # (N, 2) float64 seconds
    score: np.ndarray  # (N,) float64
    label: np.ndarray  # (N,) str class name ("" when only an index is known)
    label_index: np.ndarray  # (N,) int64 class index of THUMOS14 text (-1 otherwise)
    issues: Issues = field(default_factory=Issues)
    videos_seen: set[str] = field(default_factory=set)  # including empty files' videos
    # (N,) int64 class indices of a tool's own numbering (ActionFormer), named before
    # scoring by tool_results.label_names; None when labels are names or THUMOS14 indices
    label_code: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)


@dataclass
class FrameScores:
    sources: list[str]
    videos: list[str]
    probs: list[np.ndarray]  # per video (T, C)
    fps: list[float]
    times: list[np.ndarray | None]
    class_names: list[str]
    issues: Issues = field(default_factory=Issues)


# -- what kind of input --------------------------------------------------------------------
def classify_inputs(paths: Sequence[str | os.PathLike]) -> tuple[str, list[str]]:
    """Expand folders and tell what the inputs are: ("detections" | "proposals" |
    "frame_scores" | "pixel" | "json" | "txt" | "pkl", files). Mixed kinds are an InputError."""
    from vidseg_cli import store

    files: list[str] = []
    pixel_dirs: list[str] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_dir():
            h5 = sorted(q for q in p.iterdir() if q.suffix.lower() in (".h5", ".hdf5") and q.is_file())
            if h5:
                files += [str(q) for q in h5]
            elif is_mask_folder(p):
                pixel_dirs.append(str(p))
            else:
                raise InputError(p, "folder holds no .h5 files and no mask images")
        else:
            files.append(str(p))
    kinds: dict[str, list[str]] = {}
    for f in files:
        suf = Path(f).suffix.lower()
        if suf in (".h5", ".hdf5"):
            k = store.peek_kind(f)
            if k in PIXEL_KINDS:
                k = "pixel"
            elif k not in TEMPORAL_KINDS:
                raise InputError(
                    f, f"expected detections, proposals, frame_scores, labels or scores, found a {k} file"
                )
        elif suf == ".json":
            k = "json"
        elif suf == ".txt":
            k = "txt"
        elif suf in (".pkl", ".pickle"):
            k = "pkl"
        elif suf in _IMAGE_EXT:
            k = "pixel"
        else:
            raise InputError(f, "unknown prediction format (expected .h5, .json, .txt, .pkl or a "
                                  "mask folder)")
        kinds.setdefault(k, []).append(f)
    if pixel_dirs:
        kinds.setdefault("pixel", []).extend(pixel_dirs)
    if len(kinds) > 1:
        desc = "; ".join(f"{k}: {v[0]}" for k, v in kinds.items())
        raise InputError(paths[0], f"predictions of different kinds given together ({desc})")
    if not kinds:
        raise InputError(paths[0] if paths else ".", "no predictions given")
    (k, fl), = kinds.items()
    return k, fl


# -- readers ------------------------------------------------------------------------------
def check_records(pred: Predictions, path: str, lo: int) -> None:
    seg, sc = pred.segments[lo:], pred.score[lo:]
    bad_score = ~np.isfinite(sc)
    if bad_score.any():
        pred.issues.add("nonfinite_score", int(bad_score.sum()), path, f"score {sc[bad_score][0]}")
    bad_seg = ~(np.isfinite(seg).all(1) & (seg[:, 1] > seg[:, 0]))
    if bad_seg.any():
        s, e = seg[bad_seg][0]
        pred.issues.add("bad_segment", int(bad_seg.sum()), path, f"[{s:g}, {e:g}]")


def _frames_timestamps(path: str, attrs: dict) -> np.ndarray | None:
    """The timestamps of the frames file this file was made from (store/lineage.py). A
    recorded input still there but rewritten since (another uid) is an InputError naming
    both files when no other input leads to frames: its timestamps may not be those of the
    frames the predictions were made from, and falling back to fps would change the
    figures without a word."""
    from vidseg_cli.store.lineage import from_frames

    stale: list[tuple[str, str, str]] = []
    times = from_frames(attrs, lambda f, _: np.asarray(f["timestamps"][()], np.float64), stale=stale)
    if times is None and stale:
        src, was, now = stale[0]
        raise InputError(path, f"made from {src}, which has been rewritten since (uid {was} "
                               f"recorded, {now} found), so its timestamps may not be those "
                               "frames'; rerun the stages after it, or use --time-base fps")
    return times


def _frames_to_seconds(seg: np.ndarray, fps: float, times: np.ndarray | None) -> np.ndarray:
    if times is None or len(times) == 0:
        return seg / fps
    ext = np.r_[times, times[-1] + 1.0 / fps]  # the end of the last frame
    return np.interp(seg, np.arange(len(ext)), ext)


def _read_h5(files: list[str], kind: str, time_base: str) -> Predictions:
    from vidseg_cli import store

    vids, segs, scores, labels = [], [], [], []
    issues = Issues()
    seen = set()
    n = 0
    for f in files:
        rec = store.read_detections(f) if kind == "detections" else store.read_proposals(f)
        vid = rec.video_id or store.video_id_of(f)
        if vid in seen:
            issues.add("duplicate_video", 1, f, vid)
        seen.add(vid)
        if rec.fps <= 0 or not np.isfinite(rec.fps):
            raise InputError(f, f"fps is {rec.fps}; cannot convert frames to seconds")
        times = None
        if time_base == "timestamps":
            times = _frames_timestamps(f, rec.attrs)
            if times is None:
                issues.add("no_timestamps", 1, f, vid)
        seg = _frames_to_seconds(np.asarray(rec["segments"], np.float64), rec.fps, times)
        k = len(seg)
        if k == 0:
            issues.add("empty", 1, f, vid)
        vids.append(np.full(k, vid, dtype=object))
        segs.append(seg)
        scores.append(np.asarray(rec["scores"], np.float64))
        if kind == "detections":
            names = rec.class_names
            lab = np.asarray(rec["labels"], np.int64)
            bad = (lab < 0) | (lab >= len(names))
            if bad.any():
                raise InputError(f, f"label {lab[bad][0]} outside class_names (0..{len(names) - 1})")
            labels.append(np.asarray(names, dtype=object)[lab] if k else np.zeros(0, object))
        n += k
    pred = Predictions(
        kind=kind,
        sources=list(files),
        video=np.concatenate(vids).astype(str) if n else np.zeros(0, str),
        segments=np.concatenate(segs).reshape(-1, 2) if n else np.zeros((0, 2)),
        score=np.concatenate(scores) if n else np.zeros(0),
        label=(np.concatenate(labels).astype(str) if n else np.zeros(0, str))
        if kind == "detections" else np.full(n, "", dtype=str),
        label_index=np.full(n, -1, np.int64),
        issues=issues,
        videos_seen=seen,
    )
    # record checks per file
    lo = 0
    for f, s in zip(files, segs):
        _check_records_range(pred, f, lo, lo + len(s))
        lo += len(s)
    return pred


def _check_records_range(pred: Predictions, path: str, lo: int, hi: int) -> None:
    sub = Predictions(pred.kind, [], pred.video[lo:hi], pred.segments[lo:hi], pred.score[lo:hi],
                      pred.label[lo:hi], pred.label_index[lo:hi], pred.issues)
    check_records(sub, path, 0)


def _read_json(path: str) -> Predictions:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(path, "expected a JSON object with a 'results' object (ActivityNet result format)")
    vids, segs, scores, labels = [], [], [], []
    has_label = None
    for vid, entries in data["results"].items():
        if not isinstance(entries, list):
            raise InputError(path, f"results['{vid}']: expected a list")
        for k, r in enumerate(entries):
            try:
                s, e = (float(x) for x in r["segment"])
                sc = float(r["score"])
            except (KeyError, TypeError, ValueError):
                raise InputError(
                    path, f"results['{vid}'][{k}]: expected {{'segment': [start, end], "
                    "'score': x, 'label': name}"
                ) from None
            lab = r.get("label")
            if has_label is None:
                has_label = lab is not None
            elif has_label != (lab is not None):
                raise InputError(path, f"results['{vid}'][{k}]: some entries have a 'label', others not")
            vids.append(vid)
            segs.append((s, e))
            scores.append(sc)
            labels.append("" if lab is None else str(lab))
    pred = Predictions(
        kind="proposals" if has_label is False else "detections",
        sources=[path],
        video=np.array(vids, dtype=str),
        segments=np.array(segs, np.float64).reshape(-1, 2),
        score=np.array(scores, np.float64),
        label=np.array(labels, dtype=str),
        label_index=np.full(len(vids), -1, np.int64),
        videos_seen=set(data["results"]),
    )
    if not vids:
        pred.issues.add("empty", 1, path)
    check_records(pred, path, 0)
    return pred


def _read_txt(path: str) -> Predictions:
    vids, segs, idx, scores = [], [], [], []
    for n, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 5:
                raise ValueError
            s, e, c, sc = float(parts[1]), float(parts[2]), int(parts[3]), float(parts[4])
        except ValueError:
            raise InputError(
                path, f"line {n}: expected 'video start end class_index score', found {line.strip()!r}"
            ) from None
        vids.append(parts[0].replace(".mp4", ""))
        segs.append((s, e))
        idx.append(c)
        scores.append(sc)
    pred = Predictions(
        kind="detections",
        sources=[path],
        video=np.array(vids, dtype=str),
        segments=np.array(segs, np.float64).reshape(-1, 2),
        score=np.array(scores, np.float64),
        label=np.full(len(vids), "", dtype=str),
        label_index=np.array(idx, np.int64),
        videos_seen=set(vids),
    )
    if not vids:
        pred.issues.add("empty", 1, path)
    check_records(pred, path, 0)
    return pred


def read_predictions(kind: str, files: list[str], time_base: str = "fps") -> Predictions:
    """Read temporal predictions of one kind (from `classify_inputs`)."""
    if kind in ("detections", "proposals"):
        return _read_h5(files, kind, time_base)
    from vidseg_cli.datasets.tool_results import read_pickle_results

    readers = {"json": _read_json, "txt": _read_txt, "pkl": read_pickle_results}
    parts = [readers[kind](f) for f in files]
    kinds = {p.kind for p in parts if len(p)}
    if len(kinds) > 1:
        raise InputError(files[0], "detections and proposals given together")
    out = parts[0]
    if len(parts) > 1:
        issues = Issues()
        for p in parts:
            for k, c in p.issues.counts.items():
                for f in p.issues.files[k]:
                    issues.add(k, c, f, p.issues.examples[k])
        out = Predictions(
            kind=kinds.pop() if kinds else "detections",
            sources=[s for p in parts for s in p.sources],
            video=np.concatenate([p.video for p in parts]),
            segments=np.concatenate([p.segments for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            label=np.concatenate([p.label for p in parts]),
            label_index=np.concatenate([p.label_index for p in parts]),
            issues=issues,
            videos_seen=set().union(*(p.videos_seen for p in parts)),
            label_code=None if all(p.label_code is None for p in parts) else np.concatenate(
                [np.full(len(p), -1, np.int64) if p.label_code is None else p.label_code
                 for p in parts]),
        )
    return out


def collect_frame_scores(files: list[str], time_base: str = "fps") -> FrameScores:
    from vidseg_cli import store

    out = FrameScores(sources=list(files), videos=[], probs=[], fps=[], times=[], class_names=[])
    for f in files:
        rec = store.read_frame_scores(f)
        names = rec.class_names
        if out.class_names and names != out.class_names:
            raise InputError(f, f"class_names differ from {files[0]}'s")
        out.class_names = names
        probs = np.asarray(rec["probs"], np.float64)
        if not np.isfinite(probs).all():
            raise InputError(f, f"{int((~np.isfinite(probs)).sum())} non-finite values in 'probs'")
        if rec.fps <= 0 or not np.isfinite(rec.fps):
            raise InputError(f, f"fps is {rec.fps}; cannot place frames in time")
        vid = rec.video_id or store.video_id_of(f)
        if vid in out.videos:
            raise InputError(f, f"a second frame_scores file for video '{vid}'")
        times = _frames_timestamps(f, rec.attrs) if time_base == "timestamps" else None
        if time_base == "timestamps" and times is None:
            out.issues.add("no_timestamps", 1, f, vid)
        if times is not None and len(times) != len(probs):
            times = None
            out.issues.add("no_timestamps", 1, f, vid)
        if len(probs) == 0:
            out.issues.add("empty", 1, f, vid)
        out.videos.append(vid)
        out.probs.append(probs)
        out.fps.append(rec.fps)
        out.times.append(times)
    return out
