"""The localization methods behind `vidseg localize`, by name (a registry, STYLE.md).

A method module provides `make_<method>_localizer(opts: LocalizeOptions) -> run`, where
`run(input_path, detections_path) -> dict` localizes one video and writes its detections
file (and, for frame-level methods, `<video_id>.frame_scores.h5` beside it). The model is
loaded once in that function, not per video. Every method ends with the NMS of
stages/nms.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# method -> (module, factory attribute, input kind, one-line description)
METHODS: dict[str, tuple[str, str, str, str]] = {
    "fsn": ("vidseg_cli.api.localize_fsn", "make_fsn_localizer", "features",
            "FSN (FSN 3.3): frame scores from features, grouped over thresholds 0.0..0.9"),
    "wfsn": ("vidseg_cli.api.localize_fsn", "make_wfsn_localizer", "features",
             "weakly supervised FSN (FSN 4.3): the same grouping with the pooling removed"),
    "scnn": ("vidseg_cli.api.localize_scnn", "make_scnn_localizer", "proposals",
             "S-CNN localization network (S-CNN 3.3) on the proposals' segments"),
}


@dataclass
class LocalizeOptions:
    weights: str  # checkpoint of the method's network
    nms_iou: float = 0.4  # NMS tIoU (the papers' evaluation threshold 0.5 minus 0.1)
    top_k: int | None = None  # keep at most this many detections per video
    device: str = "auto"
    amp: bool = False
    batch_size: int = 64
    fuse_features: str | None = None  # fsn: the flow stream's features (file or folder)
    fuse_weights: str | None = None  # fsn: the flow stream's FSN checkpoint
    frames: str | None = None  # scnn: frames file or folder, instead of the proposals' provenance
    segment_score: str | None = None  # fsn/wfsn: "mean" or "contrast" (None: the method's default)
    video_threshold: float = 0.0  # wfsn: localize only classes whose video-level score reaches it
    quiet: bool = False
    command: str | None = None


def make_localizer(method: str, opts: LocalizeOptions) -> Callable[[str, Path], dict]:
    if method not in METHODS:
        raise ValueError(f"unknown localization method '{method}' (known: {', '.join(METHODS)})")
    module, attr, _, _ = METHODS[method]
    return getattr(importlib.import_module(module), attr)(opts)


def frame_scores_path(detections_path: Path, video_id: str) -> Path:
    """Where a method writes its frame_scores beside the detections (DESIGN.md)."""
    return Path(detections_path).parent / f"{video_id}.frame_scores.h5"
