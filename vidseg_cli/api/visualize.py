"""visualize: pictures of one output file.

    runner = visualize.load(visualize.Options(frames=[...], gt="gt.json", frames_png=4))
    summary = runner.run({"predictions": "a.labels.h5"}, {"prefix": "out/a.labels"})

By the input's kind (`kind_of`):
  labels, scores             <prefix>.overlay.webm (VP9) and <prefix>.frameNNNNNN.png stills
  detections, proposals,     <prefix>.timeline.svg and .png
  frame_scores
  metrics (evaluate's JSON)  <prefix>.metrics.svg and .png
`outputs_for` says which files an input gives before any is written (skip/overwrite).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError, OutputError

STAGE = "visualize"
PIXEL_KINDS = ("labels", "scores")
TEMPORAL_KINDS = ("detections", "proposals", "frame_scores")
KINDS = (*PIXEL_KINDS, *TEMPORAL_KINDS, "metrics")


@dataclass
class Options:
    frames: list[str] = field(default_factory=list)  # frames files or folders, by video_id
    gt: str | None = None  # masks or temporal ground truth
    subset: str | None = None  # of temporal ground truth; None: all subsets
    frames_png: int = 0  # stills per overlay video
    window: float | None = None  # timeline seconds per row; None: viz/timeline.py's choice
    on_notice: Callable[[str], None] | None = None
    # progress(total, description) -> a context manager giving advance(n)
    progress: Callable[[int, str], Any] | None = None


@dataclass
class VisualizeSummary(Summary):
    input: str
    kind: str
    video_id: str
    written: list[str]
    warnings: list[str] = field(default_factory=list)  # shown, not part of --json

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "kind": self.kind, "video_id": self.video_id,
                "written": self.written}


def kind_of(path: str | Path) -> str:
    """The kind of a file to draw: a vidseg kind, or "metrics" for evaluate's JSON."""
    from vidseg_cli import store

    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.suffix.lower() == ".json":
        doc = _read_json(p)
        if isinstance(doc, dict) and doc.get("kind") in ("detections", "proposals",
                                                        "frame_scores", "pixel"):
            return "metrics"
        raise InputError(p, "not a metrics JSON of vidseg evaluate (no 'kind' of detections, "
                            "proposals, frame_scores or pixel)")
    kind = store.peek_kind(p)
    if kind not in KINDS:
        raise InputError(p, f"a {kind} file has no picture; visualize draws "
                            f"{', '.join(KINDS)}")
    return kind


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(p, f"cannot read JSON ({e.__class__.__name__}: {e})") from None


def outputs_for(kind: str, prefix: str | Path, frames_png: int = 0,
                num_frames: int | None = None) -> dict[str, Path]:
    """The files an input of `kind` gives under `prefix` (stills need the frame count)."""
    pre = str(prefix)
    if kind in PIXEL_KINDS:
        outs = {"video": Path(pre + ".overlay.webm")}
        for t in still_frames(num_frames or 0, frames_png):
            outs[f"still{t}"] = Path(f"{pre}.frame{t:06d}.png")
        return outs
    name = "metrics" if kind == "metrics" else "timeline"
    return {"svg": Path(f"{pre}.{name}.svg"), "png": Path(f"{pre}.{name}.png")}


def still_frames(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over the video, middles of equal parts."""
    if num_frames <= 0 or count <= 0:
        return []
    count = min(count, num_frames)
    return sorted({int((k + 0.5) * num_frames / count) for k in range(count)})


def load(opts: Options) -> Visualizer:
    return Visualizer(opts)


class Visualizer:
    def __init__(self, opts: Options):
        from vidseg_cli.viz.sources import GroundTruth, frames_index

        self.opts = opts
        self.frames = frames_index(opts.frames) if opts.frames else {}
        self.gt = GroundTruth.load(opts.gt, opts.subset) if opts.gt else None
        # video_id -> frames files seen nearby (the report's folder), after provenance
        self.nearby: dict[str, list[Path]] = {}

    def run(self, inputs: Ports, outputs: Ports) -> VisualizeSummary:
        path = one(inputs, "predictions", STAGE)
        prefix = one(outputs, "prefix", STAGE)
        kind = kind_of(path)
        try:
            prefix.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(prefix.parent, f"cannot create the folder ({e.strerror or e})") from None
        if kind in PIXEL_KINDS:
            return self._overlay(path, kind, prefix)
        if kind in TEMPORAL_KINDS:
            return self._timeline(path, kind, prefix)
        return self._metrics(path, prefix)

    def _notice(self, line: str) -> None:
        if self.opts.on_notice is not None:
            self.opts.on_notice(line)

    def _progress(self, total: int, what: str):
        if self.opts.progress is None:
            return contextlib.nullcontext(lambda n=1: None)
        return self.opts.progress(total, what)

    # -- labels and scores: a video ------------------------------------------------------
    def _overlay(self, path: Path, kind: str, prefix: Path) -> VisualizeSummary:
        from vidseg_cli import store
        from vidseg_cli.viz.encode import write_png, write_webm
        from vidseg_cli.viz.overlay import color_table
        from vidseg_cli.viz.render import Layers, overlay_frames
        from vidseg_cli.viz.sources import frames_of

        warnings: list[str] = []
        with store.open_record(path, kind) as rec:
            attrs = rec.attrs
            vid = str(attrs["video_id"])
            pred = rec["labels" if kind == "labels" else "probs"]
            stride = int(attrs.get("spatial_stride", 1) or 1)
            frames_path = frames_of(path, attrs, self.frames, self.nearby,
                                    tuple(d * stride for d in pred.shape[-2:]))
            with store.open_record(frames_path, "frames") as fr:
                frames = fr["frames"]
                t_pred, t_frames = pred.shape[0], frames.shape[0]
                if t_pred != t_frames:
                    raise InputError(path, f"{t_pred} frames, but its frames file {frames_path} "
                                           f"has {t_frames}")
                size = tuple(frames.shape[1:3])
                own = tuple(pred.shape[-2:])
                if own != size and not (stride > 1 and _covers(own, stride, size)):
                    warnings.append(f"{path}: masks of {own[1]}x{own[0]} drawn on frames of "
                                    f"{size[1]}x{size[0]}, resized ("
                                    + ("nearest neighbour)" if kind == "labels" else "bilinear)"))
                layers = Layers(frames, pred, kind, color_table(rec.class_names or []),
                                stride=stride)
                note = "filled: " + ("predicted labels" if kind == "labels"
                                     else "top class, opacity = posterior")
                if self.gt is not None:
                    got = self.gt.masks(vid)
                    if got is None:
                        warnings.append(f"{path}: no ground-truth masks for video '{vid}' in "
                                        f"{self.gt.path}; drawn without")
                    else:
                        gt, gt_names = got
                        gt = self._fit_gt(path, gt, size, warnings)
                        if len(gt) != t_frames:
                            warnings.append(f"{path}: ground truth has {len(gt)} frames, the "
                                            f"video {t_frames}; outlines where both have one")
                        layers.gt, layers.gt_lut = gt, color_table(gt_names)
                        note += "; outline: ground truth"
                outs = outputs_for(kind, prefix, self.opts.frames_png, t_frames)
                stills = {int(k[5:]): p for k, p in outs.items() if k.startswith("still")}
                written: list[str] = []

                def frames_out():
                    for t, img in enumerate(overlay_frames(layers, note, advance)):
                        if t in stills:
                            write_png(stills[t], img)
                            written.append(str(stills[t]))
                        yield img

                with self._progress(t_frames, f"{STAGE} {Path(path).name}") as advance:
                    write_webm(outs["video"], frames_out(), float(attrs.get("fps") or 25))
        return VisualizeSummary(str(path), kind, vid, [str(outs["video"]), *written], warnings)

    @staticmethod
    def _fit_gt(path: Path, gt, size: tuple[int, int], warnings: list[str]):
        from vidseg_cli.stages.rescale import resize_labels

        own = tuple(gt.shape[1:3])
        if own == size:
            return gt
        warnings.append(f"{path}: ground-truth masks of {own[1]}x{own[0]} resized to the "
                        f"frames' {size[1]}x{size[0]} (nearest neighbour)")
        return resize_labels(gt.astype("uint8"), size)

    # -- detections, proposals, frame scores: a timeline -----------------------------------
    def _timeline(self, path: Path, kind: str, prefix: Path) -> VisualizeSummary:
        from vidseg_cli.viz.timeline import timeline_of_file

        warnings: list[str] = []
        outs = outputs_for(kind, prefix)
        vid = timeline_of_file(path, kind, self.gt, outs["svg"], outs["png"],
                               self.opts.window, warnings)
        return VisualizeSummary(str(path), kind, vid, [str(outs["svg"]), str(outs["png"])],
                                warnings)

    # -- evaluate's JSON: metric plots ----------------------------------------------------
    def _metrics(self, path: Path, prefix: Path) -> VisualizeSummary:
        from vidseg_cli.viz.metric_plots import metrics_figure

        warnings: list[str] = []
        outs = outputs_for("metrics", prefix)
        metrics_figure(path, _read_json(path), outs["svg"], outs["png"], warnings)
        return VisualizeSummary(str(path), "metrics", "", [str(outs["svg"]), str(outs["png"])],
                                warnings)


def _covers(own: tuple[int, ...], stride: int, size: tuple[int, ...]) -> bool:
    """Whether a map at `stride` stands for frames of `size` (its last cells may overhang)."""
    return all(o * stride >= s > (o - 1) * stride for o, s in zip(own, size))
