"""`predict`: one or a few videos through a paper's whole inference chain, in one process.

    p = predict.load(predict.Options(pipeline="fsn", weights={"backbone": "b.ckpt",
                                                              "fsn": "fsn.ckpt"}))
    paths = predict.output_paths("fsn", "out", "bikes")   # tag -> out/bikes.<tag>.h5
    summary = p.run({"video": "bikes.mp4"}, paths)

Each pipeline of PIPELINES names the weights it takes (its roles), the stages it chains and
the post-processing it runs. `load` checks the roles and loads every stage's network once
(api/predict_chains.py builds the chain from the stages' own api/ runners); `run` takes one
video through the chain, every intermediate file written under the name the stage would
give it in a folder (`<video_id>.<kind>.h5`), and returns what the video holds: its
detections in seconds (temporal pipelines) and the share of its pixels given to each class
(pixel pipelines).

Standard library only at the top: the command line's --help lists PIPELINES.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.core.registry import Registry
from vidseg_cli.errors import InputError

STAGE = "predict"
DOCS = "docs/predict.md"


@dataclass(frozen=True)
class Role:
    """One weights file a pipeline loads: `--weights NAME=PATH`."""

    name: str
    what: str  # what the file is
    source: str  # where a user gets one
    optional: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A paper's inference chain as predict runs it."""

    name: str
    paper: str
    roles: tuple[Role, ...]
    stages: str  # the stages chained, as a user would read them
    post: str  # the post-processing it runs, and where the paper says so
    outputs: tuple[str, ...]  # tags of the files written per video (<video_id>.<tag>.h5), main first
    build: str  # "module:function" building its chain (api/predict_chains.py)
    temporal: bool  # whether it ends in detections (printed in seconds)

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)

    def required(self) -> list[str]:
        return [r.name for r in self.roles if not r.optional]


_BACKBONE = Role("backbone", "the 2D CNN of extract-features (RGB or flow stream)",
                 "`vidseg train backbone` (docs/fsn.md); demo: sample_data/weights/backbone_synth.ckpt")
_C = "vidseg_cli.api.predict_chains"

PIPELINES = Registry("predict pipelines")
PIPELINES.register("fsn", Pipeline(
    "fsn", "FSN (Yang et al.)",
    (_BACKBONE,
     Role("fsn", "the FSN temporal CNN of localize --method fsn",
          "`vidseg train fsn` (docs/fsn.md); demo: sample_data/weights/fsn_synth.ckpt")),
    "extract-frames -> extract-features -> localize --method fsn",
    "frame scores upsampled to every frame (FSN 3.3), grouped over thresholds 0.0..0.9 per class, "
    "class-aware NMS at tIoU 0.4 (FSN 3.5, 4.2)",
    ("detections", "frames", "features", "frame_scores"), f"{_C}:fsn", True))
PIPELINES.register("wfsn", Pipeline(
    "wfsn", "weakly supervised FSN",
    (_BACKBONE,
     Role("wfsn", "the weakly supervised FSN of localize --method wfsn",
          "`vidseg train wfsn` (docs/fsn.md)")),
    "extract-frames -> extract-features -> localize --method wfsn",
    "the FSN grouping on WFSN's frame scores, runs scored by outer-inner contrast, class-aware "
    "NMS at tIoU 0.4 (FSN 4.3)",
    ("detections", "frames", "features", "frame_scores"), f"{_C}:wfsn", True))
PIPELINES.register("scnn", Pipeline(
    "scnn", "S-CNN (Shou et al.)",
    (Role("proposal", "the S-CNN proposal network of propose",
          "`vidseg train scnn --stage proposal` (docs/scnn.md); demo: "
          "sample_data/weights/scnn_proposal_synth.ckpt"),
     Role("localization", "the S-CNN localization network of localize --method scnn",
          "`vidseg train scnn --stage localization` (docs/scnn.md); demo: "
          "sample_data/weights/scnn_localization_synth.ckpt")),
    "extract-frames -> propose -> localize --method scnn",
    "multi-scale windows kept at P(action) >= 0.7, background dropped, scores times the window "
    "length's training frequency, class-aware NMS at tIoU 0.4 (S-CNN 3.1, 3.3)",
    ("detections", "frames", "proposals"), f"{_C}:scnn", True))
PIPELINES.register("3dfcn", Pipeline(
    "3dfcn", "3DFCN (Yu et al.)",
    (Role("model", "a 3DFCN-8s or 3DFCN-32s checkpoint of segment-3d",
          "`vidseg train segment --model 3dfcn-8s` (docs/segment3d.md); demo: "
          "sample_data/weights/3dfcn8s_synth.ckpt"),
     Role("hmm", "an HMM counted from your training labels, with the model's classes",
          "`vidseg hmm-fit` on the training labels (docs/post.md)", optional=True)),
    "extract-frames -> segment-3d -> hmm-smooth (with hmm=) -> crf-refine",
    "the HMM belief over time (3DFCN 3.5) when hmm= is given, then the dense CRF on every frame "
    "(3DFCN 3.6, 4.2's settings): Table 1's 3DFCN-8s+HMM+CRFs, its best row, or 3DFCN-8s+CRFs "
    "without hmm=",
    ("labels", "frames", "scores", "smoothed.scores"), f"{_C}:fcn3d", False))
PIPELINES.register("sep3d", Pipeline(
    "sep3d", "Sep3D encoder-decoder",
    (Role("model", "a Sep3D checkpoint of segment-3d (with or without its action head)",
          "`vidseg train segment --model sep3d` or `vidseg train sep3d-head` "
          "(docs/segment3d.md); demo: sample_data/weights/sep3d_synth.ckpt"),),
    "extract-frames -> segment-3d --model sep3d",
    "none: the posteriors of overlapping 8-frame clips averaged (Sep3D 3), the top class per pixel",
    ("scores", "frames"), f"{_C}:sep3d", False))
PIPELINES.register("segment-tube", Pipeline(
    "segment-tube", "Segment-tube (Duan et al.)",
    (Role("model", "a Segment-tube checkpoint holding its C3D trunk",
          "`vidseg train segment-tube` (docs/segment_tube.md); demo: "
          "sample_data/weights/segment_tube_synth.ckpt from `make sample-weights`"),),
    "extract-frames -> segment-tube",
    "temporal localization alternated with the superpixel graph cut until the labels settle "
    "(Segment-tube 2.3); detections are the runs of frames of the video's class",
    ("detections", "frames", "labels", "frame_scores"), f"{_C}:segment_tube", True))


@dataclass
class Options:
    pipeline: str  # a name in PIPELINES
    weights: dict[str, str]  # role -> path
    fps: float | None = None  # extract-frames: resample to this rate
    short_side: int | None = None  # extract-frames: resize to this short side
    size: tuple[int, int] | None = None  # extract-frames: resize to W x H
    device: str = "auto"
    amp: bool = False
    crf_jobs: int = 1  # crf-refine: processes over a video's frames
    command: str | None = None  # argv for provenance


def check(opts: Options) -> Pipeline:
    """The pipeline, after checking its roles and files before any work: ValueError for an
    unknown pipeline, an unknown role or a missing one (naming it and where to get it),
    InputError for a weights file that is not there."""
    if opts.pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline '{opts.pipeline}' (known: {', '.join(PIPELINES)}; "
                         f"{DOCS})")
    p = PIPELINES.get(opts.pipeline)
    for name in opts.weights:
        if p.role(name) is None:
            raise ValueError(f"--weights {name}=...: the {p.name} pipeline has no role '{name}' "
                             f"(its roles: {', '.join(r.name for r in p.roles)}; {DOCS})")
    missing = [r for r in p.roles if r.name not in opts.weights and not r.optional]
    if missing:
        raise ValueError(f"the {p.name} pipeline needs " + "; and ".join(
            f"--weights {r.name}=PATH, {r.what} (from {r.source})" for r in missing))
    for name, path in opts.weights.items():
        if not Path(path).is_file():
            r = p.role(name)
            raise InputError(path, f"no such weights file (--weights {name}=; {r.what}, from "
                                   f"{r.source})")
    return p


@dataclass
class Step:
    """One stage of a chain: its api/ runner and the files it reads and writes, by tag."""

    stage: str  # the catalogue's name, for messages
    runner: Any  # an api/ runner (api/base.py): run(inputs, outputs) -> Summary
    inputs: dict[str, str]  # the runner's input port -> the tag of a file made before ("video": the input)
    outputs: dict[str, str]  # the runner's output port -> the tag of the file it writes


def output_paths(pipeline: str, folder: str | Path, video_id: str,
                 weights: dict[str, str] | None = None) -> dict[str, Path]:
    """tag -> `folder/<video_id>.<tag>.h5`, for every file the pipeline writes per video
    (hmm-smooth's `smoothed.scores` only when the hmm role is given)."""
    p = PIPELINES.get(pipeline)
    tags = [t for t in p.outputs if t != "smoothed.scores" or "hmm" in (weights or {})]
    return {t: Path(folder) / f"{video_id}.{t}.h5" for t in tags}


@dataclass
class PredictSummary(Summary):
    input: str
    video_id: str
    pipeline: str
    files: dict[str, str]  # tag -> path of every file written
    stages: list[dict[str, Any]]  # each stage's own summary, with "stage"
    detections: list[dict[str, Any]] | None = None  # temporal: start, end (s), label, score
    pixels: dict[str, Any] | None = None  # pixel pipelines: frames, action frames, class shares
    warnings: list[str] = field(default_factory=list)  # lines for the user, not in --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        return {k: v for k, v in d.items() if v is not None}


def load(opts: Options) -> Predictor:
    """Check the roles, then load every stage's network once."""
    p = check(opts)
    module, name = p.build.split(":")
    return Predictor(opts, p, getattr(importlib.import_module(module), name)(opts))


class Predictor:
    """A pipeline's chain, loaded; `run` takes one video through it."""

    def __init__(self, opts: Options, pipeline: Pipeline, steps: list[Step]):
        self.opts, self.pipeline, self.steps = opts, pipeline, steps

    def run(self, inputs: Ports, outputs: Ports) -> PredictSummary:
        """Take inputs["video"] through the chain; outputs maps each tag of `output_paths`
        to its file (every one of them is written)."""
        video = one(inputs, "video", STAGE)
        files: dict[str, Path] = {"video": video}
        done, warnings = [], []
        for step in self.steps:
            ins = {port: files[tag] for port, tag in step.inputs.items()}
            outs = {port: one(outputs, tag, STAGE) for port, tag in step.outputs.items()}
            s = step.runner.run(ins, outs)
            warnings += list(getattr(s, "warnings", None) or [])
            done.append({"stage": step.stage, **s.to_json()})
            files.update({tag: outs[port] for port, tag in step.outputs.items()})
        files.pop("video")
        summary = describe(self.pipeline.name, video, {t: str(f) for t, f in files.items()})
        summary.stages, summary.warnings = done, warnings
        return summary


def describe(pipeline: str, video: str | Path, files: dict[str, str]) -> PredictSummary:
    """What a video's files say, read back: its detections in seconds (the source video's
    time, from the frames file's timestamps), and for a labels or scores file the frames
    with an action and each class's share of the pixels."""
    from vidseg_cli import store
    from vidseg_cli.api.predict_read import detections_in_seconds, pixel_shares

    p = PIPELINES.get(pipeline)
    vid = store.video_id_of(files["frames"]) if "frames" in files else store.video_id_of(video)
    dets = detections_in_seconds(files["detections"]) if "detections" in files else None
    pixels = None
    if not p.temporal or "labels" in files:
        last = files.get("labels") or files.get("scores")
        pixels = pixel_shares(last) if last else None
    return PredictSummary(input=str(video), video_id=vid, pipeline=pipeline, files=files,
                          stages=[], detections=dets, pixels=pixels)
