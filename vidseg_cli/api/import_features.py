"""import-features: feature sets published by others into our features files.

Each video's (T, D) array (datasets/feature_sets.py reads the npy, HDF5 and CSV layouts)
becomes a features file whose `centers` say which frame each row stands for, and whose
`fps` and `num_frames` put those frames in time, so `localize --method fsn|wfsn`, `train
fsn|wfsn` and `evaluate` use the set as they use features we extract. The centres follow
the set's own rule (stages/feature_time.py): the snippets rule from the stated `snippet`
and `stride`, or the rescaled rule for sets of a fixed number of rows per video.

Frame rate and frame count: `fps` as stated, else the video's from `video_info` (a set's
own metadata file, matched by name with or without ActivityNet's "v_"; the output's
video id is the metadata's name, less `strip_prefix`); the frame count from `video_info` (duration x fps where only the
duration is known); without `video_info`, under the snippets rule, the shortest video the
features fit, (T - 1) * stride + snippet. A feature count that does not fit the video's
frames (stages/feature_time.snippet_count_range; more rescaled rows than frames) is an
InputError naming the file, nothing written.

`with_sources`: other sources in the same layout holding more features of the same videos
(G-TAD's THUMOS14 flow and RGB files); each video's arrays are concatenated along D, in
the order given, after cutting them to the shortest, as G-TAD's loader does (a warning
says when lengths differ).

    imp = load(Options(snippet=16, stride=4, fps=30.0))
    for entry in imp.entries("i3d_features/"):
        imp.run({"community-features": entry.files[0], "video": entry.name},
                {"features": f"out/{entry.video_id}.features.h5"})
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError

STAGE = "import-features"


@dataclass
class Options:
    layout: str | None = None  # "npy" | "h5" | "csv"; None: from the source's files
    snippet: int | None = None  # frames per feature (snippets rule)
    stride: int | None = None  # frames between feature starts (snippets rule)
    rescaled: bool | None = None  # a fixed number of rows spread over the video; None: csv -> True
    fps: float | None = None  # the rate the set was extracted at; None: video_info's
    video_info: str | None = None  # the set's per-video metadata (datasets/feature_sets.py)
    with_sources: list[str] = field(default_factory=list)
    strip_prefix: str = ""  # dropped from the start of each video id (ActivityNet's "v_")
    backbone: str = "imported"  # recorded (FSN checks that training and use agree)
    stream: str = "imported"
    command: Any = None


@dataclass
class ImportSummary(Summary):
    input: str
    output: str
    video_id: str
    snippets: int
    feature_dim: int
    fps: float
    num_frames: int
    rule: str
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        return d


@dataclass
class Entry:
    """One video of a source: its name there, the id its output gets, and where each
    stream's array is (file, dataset name or "")."""

    name: str
    video_id: str
    parts: list[tuple[str, str]]

    @property
    def files(self) -> list[str]:
        return [f for f, _ in self.parts]


def load(opts: Options) -> Importer:
    return Importer(opts)


class Importer:
    def __init__(self, opts: Options):
        from vidseg_cli.datasets.feature_sets import LAYOUTS, read_video_info

        if opts.layout is not None and opts.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {opts.layout!r}")
        for name in ("snippet", "stride"):
            v = getattr(opts, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if opts.fps is not None and not (np.isfinite(opts.fps) and opts.fps > 0):
            raise ValueError(f"fps must be > 0, got {opts.fps}")
        self.opts = opts
        self.info = read_video_info(opts.video_info) if opts.video_info else None
        self._entries: dict[str, list[Entry]] = {}
        self._extra: list[dict[str, tuple[str, str]]] | None = None

    # -- what a source holds ------------------------------------------------------------
    def layout(self, source: str) -> str:
        from vidseg_cli.datasets.feature_sets import layout_of

        return self.opts.layout or layout_of(source)

    def rescaled(self, layout: str) -> bool:
        return self.opts.rescaled if self.opts.rescaled is not None else layout == "csv"

    def check_rule(self, layout: str, where: str) -> None:
        """The settings a layout's rule needs, before any video is read."""
        o = self.opts
        if self.rescaled(layout):
            if self.info is None:
                raise InputError(where, "rescaled features (a fixed number of rows per video) need "
                                        "each video's frames: give --video-info")
        elif o.snippet is None or o.stride is None:
            raise InputError(where, "state --snippet and --stride (frames per feature and between "
                                    "features; ActionFormer's THUMOS14 I3D set: 16 and 4)")
        if o.fps is None and self.info is None:
            raise InputError(where, "state --fps, or give --video-info with each video's rate")

    def entries(self, source: str) -> list[Entry]:
        """Every video of `source` (a file or folder), with its other streams' arrays."""
        if source not in self._entries:
            self._entries[source] = self._list(source)
        return self._entries[source]

    def _list(self, source: str) -> list[Entry]:
        from vidseg_cli.datasets.feature_sets import find_videos, match_info

        layout = self.layout(source)
        self.check_rule(layout, source)
        main = find_videos(source, layout)
        if self._extra is None:  # the other streams, listed once
            self._extra = [find_videos(w, layout) for w in self.opts.with_sources]
        extra = self._extra
        out = []
        for name, part in main.items():
            parts = [part]
            for w, found in zip(self.opts.with_sources, extra):
                if name not in found:
                    raise InputError(w, f"has no features for video '{name}' of {source}")
                parts.append(found[name])
            vid = name
            if self.info is not None:
                hit = match_info(self.info, name)
                vid = hit[0] if hit else name
            pre = self.opts.strip_prefix
            if pre and vid.startswith(pre) and len(vid) > len(pre):
                vid = vid[len(pre):]
            out.append(Entry(name, vid, parts))
        return out

    # -- one video -----------------------------------------------------------------------
    def _timing(self, entry: Entry, n: int, layout: str) -> tuple[np.ndarray, float, int, dict]:
        """(centres, fps, num_frames, attrs) of a video's n rows."""
        from vidseg_cli.datasets.feature_sets import VideoInfo, match_info
        from vidseg_cli.stages import feature_time as ft

        o = self.opts
        where = entry.parts[0][0] if not entry.parts[0][1] else f"{entry.parts[0][0]}[{entry.name}]"
        info = VideoInfo()
        if self.info is not None:
            hit = match_info(self.info, entry.name)
            if hit is None:
                raise InputError(where, f"video '{entry.name}' is not in {o.video_info}")
            info = hit[1]
        fps = o.fps or info.fps
        if fps is None:
            raise InputError(where, f"no frame rate for '{entry.name}' in {o.video_info}; state --fps")
        frames = info.num_frames
        if o.fps is not None and info.seconds:
            frames = int(round(info.seconds * o.fps))  # the stated rate, over the video's duration
        if self.rescaled(layout):
            if not frames:
                raise InputError(where, f"no frame count for '{entry.name}' in {o.video_info}")
            covered = frames
            if info.feature_frames and info.num_frames:
                covered = min(frames, int(round(info.feature_frames * frames / info.num_frames)))
            if n > covered:
                raise InputError(where, f"{n} rescaled rows over {covered} frames: more rows than "
                                        "frames (wrong --video-info?)")
            centers = ft.rescaled_centers(n, covered)
            attrs = {"time_rule": "rescaled", "rescaled_rows": n, "covered_frames": covered,
                     "snippet": max(1, int(round(covered / n))), "stride": 0,
                     "center_rule": "floor((k + 0.5) * covered_frames / rescaled_rows)"}
            return centers, float(fps), int(frames), attrs
        L, S = int(o.snippet), int(o.stride)
        if frames is None:
            frames = (n - 1) * S + L  # the shortest video these snippets fit
        else:
            lo, hi = ft.snippet_count_range(frames, L, S)
            if not lo <= n <= hi:
                raise InputError(where, f"{n} features at stride {S} (snippet {L}) do not fit the "
                                        f"video's {frames} frames at {fps:g} fps (expected {lo} to "
                                        f"{hi}): wrong --stride, --snippet, --fps or video?")
        attrs = {"time_rule": "snippets", "snippet": L, "stride": S,
                 "center_rule": "i*stride + snippet//2"}
        return ft.snippet_centers(n, L, S, frames), float(fps), int(frames), attrs

    def run(self, inputs: Ports, outputs: Ports) -> ImportSummary:
        """inputs: {"community-features": file, "video": its name there (optional when the
        file holds one video)}; outputs: {"features": path}."""
        from vidseg_cli import store
        from vidseg_cli.datasets.feature_sets import load_features

        t0 = time.perf_counter()
        src = str(one(inputs, "community-features", STAGE))
        out_path = one(outputs, "features", STAGE)
        layout = self.layout(src)
        self.check_rule(layout, src)
        entry = self._entry(src, inputs.get("video"))
        arrays = [load_features(f, d, layout) for f, d in entry.parts]
        warn = []
        n = min(len(a) for a in arrays)
        if len({len(a) for a in arrays}) > 1:
            warn.append(f"{src}: video '{entry.name}': streams of "
                        f"{', '.join(str(len(a)) for a in arrays)} rows, cut to {n}")
        feats = np.concatenate([a[:n] for a in arrays], axis=1)
        centers, fps, frames, attrs = self._timing(entry, n, layout)
        attrs.update({"backbone": self.opts.backbone, "stream": self.opts.stream,
                      "feature_dim": int(feats.shape[1]), "source_layout": layout,
                      "source_names": entry.name, "flow_method": "none"})
        store.write_features(out_path, feats, centers, video_id=entry.video_id, num_frames=frames,
                             fps=fps, inputs=sorted(set(entry.files)), attrs=attrs,
                             command=self.opts.command)
        return ImportSummary(input=src, output=str(out_path), video_id=entry.video_id, snippets=n,
                             feature_dim=int(feats.shape[1]), fps=fps, num_frames=frames,
                             rule=attrs["time_rule"], seconds=round(time.perf_counter() - t0, 3),
                             warnings=warn)

    def _entry(self, src: str, name: Any) -> Entry:
        found = self.entries(src)
        if name is None:
            if len(found) != 1:
                raise InputError(src, f"holds {len(found)} videos; name one (inputs['video'])")
            return found[0]
        for e in found:
            if e.name == str(name):
                return e
        raise InputError(src, f"holds no video '{name}'")
