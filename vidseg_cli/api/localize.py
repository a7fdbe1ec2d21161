"""`localize`: temporal action detections by a named method (a registry, STYLE.md).

    loc = localize.load(localize.Options(weights="fsn.ckpt", method="fsn"))
    summary = loc.run({"features": "v.features.h5"}, {"detections": "v.detections.h5",
                                                      "frame_scores": "v.frame_scores.h5"})

Each method of METHODS names its runner class, the kind of its main input and what it is;
`load` builds that runner once (its network loaded once, not per video) and its `run`
localizes one video into a DetectionsSummary. Every method ends with the NMS of
stages/nms.py. The frame-level methods (fsn, wfsn) also write the video's frame scores,
by default named after the detections file beside it (`frame_scores_path`): two runs into
one folder under different names keep their own.

Standard library only: the command line reads METHODS for its --method choices.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidseg_cli.api.base import Runner, Summary
from vidseg_cli.core.registry import Registry

STAGE = "localize"


@dataclass(frozen=True)
class Method:
    """A localization method as the registry records it."""

    runner: str  # "module:class" of its runner, imported only when loaded
    input_kind: str  # the kind of its main input (one file per video)
    help: str  # one line


METHODS = Registry("localization methods")
METHODS.register("fsn", Method(
    "vidseg_cli.api.localize_fsn:FSNLocalizer", "features",
    "FSN (FSN 3.3): frame scores from features, grouped over thresholds 0.0..0.9"))
METHODS.register("wfsn", Method(
    "vidseg_cli.api.localize_fsn:WFSNLocalizer", "features",
    "weakly supervised FSN (FSN 4.3): the same grouping with the pooling removed"))
METHODS.register("scnn", Method(
    "vidseg_cli.api.localize_scnn:SCNNLocalizer", "proposals",
    "S-CNN localization network (S-CNN 3.3) on the proposals' segments"))


@dataclass
class Options:
    weights: str  # checkpoint of the method's network
    method: str = "fsn"  # a name in METHODS
    nms_iou: float = 0.4  # NMS tIoU (the papers' evaluation threshold 0.5 minus 0.1)
    top_k: int | None = None  # keep at most this many detections per video
    device: str = "auto"
    amp: bool = False
    batch_size: int = 64
    fuse_weights: str | None = None  # fsn: the flow stream's FSN checkpoint (inputs "flow-features")
    segment_score: str | None = None  # fsn/wfsn: "mean" or "contrast" (None: the method's default)
    video_threshold: float = 0.0  # wfsn: localize only classes whose video-level score reaches it
    command: str | None = None


@dataclass
class DetectionsSummary(Summary):
    """One video's detections; the fields a method does not report stay None and are left
    out of `to_json`."""

    input: str
    output: str
    frame_scores: str | None = None  # fsn/wfsn: the frame scores file written
    proposals: int | None = None  # scnn: proposals scored
    foreground: int | None = None  # scnn: proposals whose top class is an action
    detections: int = 0
    frames: int | None = None  # fsn/wfsn: the video's frames

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def load(opts: Options) -> Runner:
    """The runner of `opts.method`, its network loaded from `opts.weights`."""
    if opts.method not in METHODS:
        raise ValueError(f"unknown localization method '{opts.method}' (known: {', '.join(METHODS)})")
    module, name = METHODS.get(opts.method).runner.split(":")
    return getattr(importlib.import_module(module), name)(opts)


def frame_scores_path(detections_path: str | Path) -> Path:
    """Where a frame-level method writes its frame_scores: beside the detections, named
    after them (`out/a.h5` -> `out/a.frame_scores.h5`; in a folder,
    `<video_id>.detections.h5` -> `<video_id>.frame_scores.h5`, DESIGN.md's names)."""
    p = Path(detections_path)
    stem = p.stem if p.suffix in (".h5", ".hdf5") else p.name
    stem = stem.removesuffix(".detections")
    return p.with_name(f"{stem}.frame_scores.h5")
