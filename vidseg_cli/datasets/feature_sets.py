"""Feature sets published by others, read as (T, D) float32 arrays per video, and the
per-video metadata (frames, seconds, fps) that places them in time.

Layouts (`LAYOUTS`):

- "npy": one `<video>.npy` per video holding (T, D), T snippets in time order
  (ActionFormer's and OpenTAD's THUMOS14/ActivityNet sets: I3D RGB and flow features
  concatenated, 2048-d; `np.load` without pickles).
- "h5": HDF5 holding one dataset (T, D) per video, named after it, in one file (G-TAD's
  THUMOS14 `rgb_val.h5`, `flow_test.h5`, ...) or one file per video (G-TAD's ActivityNet
  `<video>.h5`).
- "csv": one `<video>.csv` per video, a header row then T rows of D numbers (BSN's and
  BMN's ActivityNet `csv_mean_100/v_<id>.csv`, 100 rows of 400 = 200 RGB + 200 flow TSN).

Video metadata (`read_video_info`), for the frame count and rate of each video:

- ActivityNet-style JSON `{"database": {video: {"duration", "fps"?, "num_frames"?}}}`
  (ActionFormer's thumos14.json carries "fps"; our synthetic sets "fps" and "num_frames");
- BMN's `anet_anno_action.json` `{video: {"duration_second", "duration_frame",
  "feature_frame"}}`;
- BMN's `video_info_new.csv` (columns video, numFrame, seconds, fps, ..., featureFrame).

With BMN's files the frame rate is frames / seconds, the rate BSN placed its snippets by
(data_process.py: `fps = video_frame / video_second`), not the nominal "fps" column.

`feature_frame` is the part of the video the snippets covered (BSN: 16 x the number of
16-frame snippets, the last partial one dropped), which the rescaled sets spread their
rows over.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidseg_cli.errors import InputError

__all__ = ["LAYOUTS", "VideoInfo", "find_videos", "layout_of", "load_features", "match_info",
           "read_video_info"]

LAYOUTS = ("npy", "h5", "csv")
_SUFFIX = {"npy": (".npy",), "h5": (".h5", ".hdf5"), "csv": (".csv",)}


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int | None = None
    fps: float | None = None
    seconds: float | None = None
    feature_frames: int | None = None  # frames the snippets covered (BSN's feature_frame)


# -- which videos a source holds ----------------------------------------------------------
def layout_of(source: str | os.PathLike) -> str:
    """The layout a file or folder is in, from its suffix or its files' suffixes."""
    p = Path(source)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    names = [p] if p.is_file() else sorted(q for q in p.iterdir() if q.is_file())
    found = {lay for q in names for lay, sufs in _SUFFIX.items() if q.suffix.lower() in sufs}
    if len(found) == 1:
        return found.pop()
    if not found:
        raise InputError(p, "holds no .npy, .h5 or .csv feature files")
    raise InputError(p, f"holds feature files of several layouts ({', '.join(sorted(found))}); "
                        "give --layout")


def find_videos(source: str | os.PathLike, layout: str) -> dict[str, tuple[str, str]]:
    """{video name: (file, dataset name or "")} of a source (a file or a folder)."""
    p = Path(source)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    files = [p] if p.is_file() else sorted(q for q in p.iterdir() if q.is_file()
                                           and q.suffix.lower() in _SUFFIX[layout])
    if not files:
        raise InputError(p, f"no {'/'.join(_SUFFIX[layout])} files")
    out: dict[str, tuple[str, str]] = {}
    for f in files:
        if layout == "h5":
            for name in _h5_datasets(f):
                # a file per video names its one dataset after the video; several: each is one
                out[name] = (str(f), name)
        else:
            out[f.stem] = (str(f), "")
    return out


def _h5_datasets(path: Path) -> list[str]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
    except OSError as e:
        raise InputError(path, f"not a readable HDF5 file ({e})") from None
    if not names:
        raise InputError(path, "holds no datasets")
    return names


# -- one video's features ------------------------------------------------------------------
def load_features(path: str, dataset: str, layout: str) -> np.ndarray:
    """(T, D) float32 of one video; a wrong shape or a non-finite value is an InputError."""
    where = f"{path}[{dataset}]" if dataset else path
    a = _LOADERS[layout](path, dataset)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(where, f"expected features of shape (T, D), found {a.shape}")
    a = a.astype(np.float32, copy=False)
    bad = ~np.isfinite(a).all(1)
    if bad.any():
        raise InputError(where, f"{int(bad.sum())} of {len(a)} feature rows hold non-finite values "
                                f"(the first: row {int(np.flatnonzero(bad)[0])})")
    return a


def _npy(path: str, _: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(path, f"not a readable .npy array ({e})") from None


def _h5(path: str, dataset: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f[dataset][()])
    except (OSError, KeyError) as e:
        raise InputError(f"{path}[{dataset}]", f"cannot read ({e})") from None


def _csv(path: str, _: str) -> np.ndarray:
    from vidseg_cli.errors import read_lines

    lines = [ln for ln in read_lines(path) if ln.strip()]
    if len(lines) < 2:
        raise InputError(path, "expected a header row and at least one row of numbers")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        try:
            rows.append([float(x) for x in line.split(",")])
        except ValueError:
            raise InputError(path, f"line {n}: expected comma-separated numbers") from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(path, f"rows of different lengths ({', '.join(map(str, sorted(widths)))})")
    return np.array(rows, np.float64)


_LOADERS: dict[str, Callable[[str, str], np.ndarray]] = {"npy": _npy, "h5": _h5, "csv": _csv}


# -- per-video metadata ---------------------------------------------------------------------
def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _info(frames=None, fps=None, seconds=None, feature_frames=None) -> VideoInfo:
    frames, fps, seconds, ff = _num(frames), _num(fps), _num(seconds), _num(feature_frames)
    if fps is None and frames and seconds:
        fps = frames / seconds  # BSN's own rate: frames over seconds
    if frames is None and fps and seconds:
        frames = round(seconds * fps)
    return VideoInfo(None if frames is None else int(round(frames)), fps, seconds,
                     None if ff is None else int(round(ff)))


def read_video_info(path: str | os.PathLike) -> dict[str, VideoInfo]:
    """{video: VideoInfo} from an ActivityNet-style JSON, BMN's anet_anno_action.json or
    BMN's video_info_new.csv."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return _info_csv(p)
    from vidseg_cli.datasets.temporal_gt import load_json

    data = load_json(p)
    if isinstance(data, dict) and isinstance(data.get("database"), dict):
        db = data["database"]
        out = {v: _info(d.get("num_frames"), d.get("fps"), d.get("duration"))
               for v, d in db.items() if isinstance(d, dict)}
    elif isinstance(data, dict) and data and all(isinstance(d, dict) and "duration_frame" in d
                                                 for d in data.values()):
        out = {v: _info(d.get("duration_frame"), None, d.get("duration_second"), d.get("feature_frame"))
               for v, d in data.items()}
    else:
        raise InputError(p, "expected ActivityNet-style JSON ({'database': {video: {'duration', "
                            "'fps'}}}) or BMN's {video: {'duration_second', 'duration_frame', "
                            "'feature_frame'}}")
    if not out:
        raise InputError(p, "lists no videos")
    return out


def _info_csv(p: Path) -> dict[str, VideoInfo]:
    from vidseg_cli.errors import read_lines

    rows = list(csv.DictReader(read_lines(p)))
    if not rows or not {"video", "numFrame", "seconds"} <= set(rows[0]):
        raise InputError(p, "expected BMN's video_info CSV (columns video, numFrame, seconds, fps, "
                            "featureFrame)")
    # the rate BSN and BMN place snippets with is numFrame / seconds, not the nominal "fps"
    return {r["video"]: _info(r.get("numFrame"), None, r.get("seconds"), r.get("featureFrame"))
            for r in rows}


def match_info(info: dict[str, VideoInfo], name: str) -> tuple[str, VideoInfo] | None:
    """The metadata of a video file named `name`, and the video's id as the metadata names
    it: the same name, or the name without ActivityNet's "v_" prefix (features files are
    often `v_<id>`, annotations `<id>`), or with it."""
    for key in (name, name[2:] if name.startswith("v_") else None, "v_" + name):
        if key is not None and key in info:
            return key, info[key]
    return None

