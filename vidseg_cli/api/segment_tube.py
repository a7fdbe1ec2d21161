"""`segment-tube`: a frames file in; the video's labels, detections and optionally frame
scores out (Segment-tube §2, infer/segment_tube.py).

    st = segment_tube.load(segment_tube.Options(weights="st.ckpt"))
    st.run({"frames": "v.frames.h5"},
           {"labels": "v.labels.h5", "detections": "v.detections.h5",
            "frame_scores": "v.frame_scores.h5"})  # frame_scores optional

The labels file holds k' on the foreground pixels of the frames labelled k' and 0
elsewhere; the detections are the runs of frames labelled k' scored by their mean α; the
frame scores hold α_t for k' and 1 - α_t for background. Every file records every setting,
the rounds run, whether the alternation converged and each round's changes. A video
shorter than the shortest clip gets a warning and empty valid outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError
from vidseg_cli.infer.segment_tube import (
    SegmentTubeInference,
    Settings,
    VideoResult,
    frame_scores,
    round_attrs,
)
from vidseg_cli.models.segment_tube import load_segment_tube
from vidseg_cli.runtime import resolve_device

STAGE = "segment-tube"


@dataclass
class Options:
    weights: str  # a Segment-tube checkpoint holding its C3D trunk (models/segment_tube.py)
    settings: Settings = field(default_factory=Settings)
    device: str = "auto"
    amp: bool = False
    command: str | None = None  # argv for provenance


@dataclass
class SegmentTubeSummary(Summary):
    input: str
    labels: str
    detections: str
    frame_scores: str | None
    video_id: str
    num_frames: int
    video_class: str | None  # the class name of k'; None when no clip was an action
    frames_labelled: int  # frames with l_t = k'
    num_detections: int
    rounds: int
    converged: bool
    warnings: list[str] = field(default_factory=list)  # lines for the user, not in --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        if d["frame_scores"] is None:
            d.pop("frame_scores")
        return d


def beside(labels_path: str | Path, kind: str) -> Path:
    """A secondary output named after the labels file, beside it: `out/a.labels.h5` ->
    `out/a.detections.h5`, `out/a.h5` -> `out/a.detections.h5`."""
    p = Path(labels_path)
    stem = p.stem if p.suffix in (".h5", ".hdf5") else p.name
    return p.with_name(f"{stem.removesuffix('.labels')}.{kind}.h5")


class SegmentTube:
    """The network loaded once; `run` does one video."""

    def __init__(self, opts: Options):
        self.opts = opts
        model = load_segment_tube(opts.weights, need_trunk=True)
        self.classes = list(model.classes)
        self.infer = SegmentTubeInference(model, opts.settings, resolve_device(opts.device), opts.amp)

    def run(self, inputs: Ports, outputs: Ports) -> SegmentTubeSummary:
        """Segment the frames file inputs["frames"] into outputs["labels"] and
        outputs["detections"] (and outputs["frame_scores"] when given)."""
        frames_path = str(one(inputs, "frames", STAGE))
        labels_out, det_out = one(outputs, "labels", STAGE), one(outputs, "detections", STAGE)
        fs_out = one(outputs, "frame_scores", STAGE) if "frame_scores" in outputs else None
        rec = store.read_frames(frames_path, load_frames=True)
        frames = np.asarray(rec["frames"])
        t_len, height, width = frames.shape[:3]
        min_h, min_w = self.infer.min_size()
        if t_len and (height < min_h or width < min_w):
            raise InputError(frames_path, f"frames of {width}x{height} are smaller than the trunk's "
                                          f"{min_w}x{min_h} crop")
        result = self.infer(frames)
        warnings = self._warnings(frames_path, t_len, result)
        k = result.temporal.video_class
        attrs = {"method": "segment_tube", "weights": str(Path(self.opts.weights).resolve()),
                 "video_class": k, **self.opts.settings.attrs(), **round_attrs(result)}
        meta = dict(video_id=rec.video_id, num_frames=t_len, fps=rec.fps, inputs=[frames_path],
                    class_names=self.classes, command=self.opts.command, attrs=attrs)
        t = result.temporal
        store.write_labels(labels_out, result.labels, **meta)
        store.write_detections(det_out, t.segments, t.segment_labels, t.segment_scores, **meta)
        if fs_out is not None:
            store.write_frame_scores(fs_out, frame_scores(t, len(self.classes)), **meta)
        return SegmentTubeSummary(
            input=frames_path, labels=str(labels_out), detections=str(det_out),
            frame_scores=None if fs_out is None else str(fs_out), video_id=rec.video_id,
            num_frames=t_len, video_class=self.classes[k] if k >= 1 else None,
            frames_labelled=int((t.labels == k).sum()) if k >= 1 else 0,
            num_detections=len(t.segments), rounds=int(attrs["rounds"]),
            converged=bool(attrs["converged"]), warnings=warnings)

    def _warnings(self, path: str, t_len: int, result: VideoResult) -> list[str]:
        shortest = min(self.opts.settings.clip_lengths)
        if result.alternation is None:
            return [f"{path}: {t_len} frames, shorter than the {shortest}-frame clip; "
                    "wrote empty outputs"]
        k = result.temporal.video_class
        if k >= 1 and (result.temporal.labels == k).any() and not result.labels.any():
            return [f"{path}: the cut found no foreground on the frames labelled "
                    f"'{self.classes[k]}'; the labels are empty"]
        return []


def load(opts: Options) -> SegmentTube:
    """The network of `opts.weights`; InputError for another model or no embedded trunk."""
    return SegmentTube(opts)
