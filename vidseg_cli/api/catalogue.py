"""The stage catalogue: every command that processes data, what it reads and writes.

`STAGES` is the one place that knows, as data rather than prose, which kinds of file each
command reads (and which of them are matched to the main inputs by video_id), which it
writes (a secondary output such as localize's frame_scores included), whether it runs per
video or over a whole set, and whether a GPU speeds it up. The click command list
(cli/main.py), `vidseg stages`, the README's command table (checked by a test) and job
submission read it.

Standard library only: `vidseg --help` imports this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from vidseg_cli.core.registry import Registry

# Kinds that are not vidseg HDF5 files (those are store/kinds.py's KINDS), each with what
# it is, so a reader of the catalogue knows every name it meets.
OUTSIDE_KINDS: dict[str, str] = {
    "video": "a video file (mp4, avi, mkv, ...) or a folder of JPEG/PNG frames",
    "ground-truth": "annotations: ActivityNet-style JSON, a THUMOS14 txt folder, J-HMDB .mat "
                    "masks or DAVIS 2016 sequences",
    "dataset": "a dataset folder: `vidseg synth` output, J-HMDB, DAVIS 2016 or THUMOS14-style",
    "checkpoint": "model weights: a vidseg checkpoint (.ckpt) or a public layout it converts",
    "run": "a training run folder: last.ckpt, best.ckpt, log.jsonl, config.json",
    "results": "detections or proposals as result JSON (ours, OpenTAD's, mmaction2's), THUMOS14 "
               "text, or ActionFormer's and mmaction2's result pickles",
    "metrics": "a JSON summary of scores",
    "picture": "an overlay video (VP9 WebM), stills (PNG) or a plot (SVG and PNG)",
    "report": "a folder with index.html, one self-contained page, and its pictures beside it",
    "outputs": "a folder of vidseg outputs: files of any kind, evaluate's JSON, run folders",
    "community-features": "a feature set published by others: per-video .npy (ActionFormer, "
                          "OpenTAD), G-TAD's HDF5, BSN/BMN's per-video CSV",
    "video-info": "a feature set's per-video metadata (frames, duration, fps): ActivityNet-style "
                  "JSON or BMN's video_info CSV/JSON",
}

MAIN = "INPUTS"  # `via` of the positional arguments
OUT = "-o"  # `via` of the main output


@dataclass(frozen=True)
class Port:
    """One input or output of a stage."""

    kinds: tuple[str, ...]  # any one of these kinds
    via: str  # MAIN, OUT, an option ("--frames"), or BESIDE for a file written next to -o
    paired: bool = False  # matched to the main inputs by video_id
    optional: bool = False
    when: str = ""  # the condition under which it applies ("--method scnn")


BESIDE = "beside -o"


@dataclass(frozen=True)
class Stage:
    """A command that processes data, as the catalogue records it."""

    name: str  # as typed after `vidseg` ("segment-3d", "train segment")
    command: str  # "module:attribute" of the click command, imported only when run
    help: str  # one line, shown by `vidseg --help`
    reads: tuple[Port, ...]
    writes: tuple[Port, ...]
    scope: Literal["video", "set"]  # one input file per video, or a whole set at once
    gpu: bool  # whether a GPU speeds it up (it also runs on a CPU)

    @property
    def argv(self) -> list[str]:
        """The words that call it: ["train", "segment"]."""
        return self.name.split()

    def input_kinds(self) -> list[str]:
        return sorted({k for p in self.reads for k in p.kinds})

    def output_kinds(self) -> list[str]:
        return sorted({k for p in self.writes for k in p.kinds})

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["argv"] = self.argv
        for key in ("reads", "writes"):
            d[key] = [{**p, "kinds": list(p["kinds"])} for p in d[key]]
        return d


def _p(kinds: str, via: str = MAIN, **kw: Any) -> Port:
    return Port(tuple(kinds.split("|")), via, **kw)


STAGES = Registry("stages")


def _add(stage: Stage) -> None:
    STAGES.register(stage.name, stage)


_add(Stage(
    "extract-frames", "vidseg_cli.cli.extract_frames:extract_frames",
    "Decode videos or frame folders into frames files.",
    reads=(_p("video"),), writes=(_p("frames", OUT),), scope="video", gpu=False))
_add(Stage(
    "extract-features", "vidseg_cli.cli.extract_features:extract_features",
    "One 2D/3D CNN feature vector per snippet (FSN 3.2), RGB or optical flow.",
    reads=(_p("frames"), _p("checkpoint", "--weights"),
           _p("checkpoint", "--flow-weights", optional=True, when="--stream rgb+flow")),
    writes=(_p("features", OUT),), scope="video", gpu=True))
_add(Stage(
    "import-features", "vidseg_cli.cli.import_features:import_features",
    "Published feature sets (ActionFormer/OpenTAD .npy, G-TAD HDF5, BMN CSV) as features files.",
    reads=(_p("community-features"), _p("community-features", "--with", paired=True, optional=True),
           _p("video-info", "--video-info", optional=True)),
    writes=(_p("features", OUT),), scope="set", gpu=False))
_add(Stage(
    "segment-3d", "vidseg_cli.cli.segment3d:segment_3d",
    "Per-pixel class posteriors with 3DFCN (32s, 8s) or Sep3D.",
    reads=(_p("frames"), _p("checkpoint", "--weights")),
    writes=(_p("scores", OUT),), scope="video", gpu=True))
_add(Stage(
    "propose", "vidseg_cli.cli.propose:propose",
    "S-CNN multi-scale windows scored by the proposal network.",
    reads=(_p("frames"), _p("checkpoint", "--weights", optional=True, when="--method scnn")),
    writes=(_p("proposals", OUT),), scope="video", gpu=True))
_add(Stage(
    "localize", "vidseg_cli.cli.localize:localize",
    "Temporal action detections with FSN, WFSN or S-CNN.",
    reads=(
        _p("features", when="--method fsn|wfsn"),
        _p("proposals", when="--method scnn"),
        _p("checkpoint", "--weights"),
        _p("features", "--fuse", paired=True, optional=True, when="--method fsn"),
        _p("checkpoint", "--fuse-weights", optional=True, when="--method fsn"),
        _p("frames", "--frames", paired=True, optional=True, when="--method scnn"),
    ),
    writes=(_p("detections", OUT), _p("frame_scores", BESIDE, when="--method fsn|wfsn")),
    scope="video", gpu=True))
_add(Stage(
    "segment-tube", "vidseg_cli.cli.segment_tube:segment_tube",
    "Segment-tube: temporal localization and per-frame actor masks, alternated.",
    reads=(_p("frames"), _p("checkpoint", "--weights")),
    writes=(_p("labels", OUT), _p("detections", BESIDE),
            _p("frame_scores", BESIDE, optional=True, when="--frame-scores")),
    scope="video", gpu=True))
_add(Stage(
    "predict", "vidseg_cli.cli.predict:predict",
    "A paper's whole inference chain on a few videos, in one process; detections printed.",
    reads=(_p("video"), _p("checkpoint", "--weights"),
           _p("hmm", "--weights", optional=True, when="--pipeline 3dfcn")),
    writes=(_p("detections", OUT, when="--pipeline fsn|wfsn|scnn|segment-tube"),
            _p("labels", OUT, when="--pipeline 3dfcn"),
            _p("scores", OUT, when="--pipeline sep3d"),
            _p("frames", BESIDE),
            _p("features", BESIDE, when="--pipeline fsn|wfsn"),
            _p("proposals", BESIDE, when="--pipeline scnn"),
            _p("frame_scores", BESIDE, when="--pipeline fsn|wfsn|segment-tube"),
            _p("scores", BESIDE, when="--pipeline 3dfcn"),
            _p("labels", BESIDE, when="--pipeline segment-tube")),
    scope="video", gpu=True))
_add(Stage(
    "hmm-fit", "vidseg_cli.cli.hmm:hmm_fit",
    "Count an HMM (prior, transitions) from ground-truth labels.",
    reads=(_p("labels|ground-truth"),), writes=(_p("hmm", OUT),), scope="set", gpu=False))
_add(Stage(
    "hmm-smooth", "vidseg_cli.cli.hmm:hmm_smooth",
    "Forward-backward smoothing of per-pixel or per-frame scores (3DFCN 3.5).",
    reads=(_p("scores|frame_scores"), _p("hmm", "--hmm")),
    writes=(_p("scores|frame_scores", OUT),), scope="video", gpu=True))
_add(Stage(
    "crf-refine", "vidseg_cli.cli.crf_refine:crf_refine",
    "Dense CRF refinement of per-pixel scores on the frames (3DFCN 3.6).",
    reads=(_p("scores"), _p("frames", "--frames", paired=True)),
    writes=(_p("labels", OUT), _p("scores", BESIDE, optional=True, when="--keep-probs")),
    scope="video", gpu=False))
_add(Stage(
    "evaluate", "vidseg_cli.cli.evaluate:evaluate",
    "Score detections, proposals, frame scores or masks against ground truth.",
    reads=(_p("detections|proposals|frame_scores|scores|labels|results"),
           _p("ground-truth", "--gt")),
    writes=(_p("metrics", "--json", optional=True),), scope="set", gpu=False))
_add(Stage(
    "export", "vidseg_cli.cli.export:export",
    "Write detections as ActivityNet-style result JSON.",
    reads=(_p("detections"),), writes=(_p("results", OUT),), scope="set", gpu=False))
_add(Stage(
    "visualize", "vidseg_cli.cli.visualize:visualize",
    "Overlay videos, timelines and metric plots of output files.",
    reads=(_p("labels|scores|detections|proposals|frame_scores|metrics"),
           _p("frames", "--frames", paired=True, optional=True),
           _p("labels|ground-truth", "--gt", optional=True)),
    writes=(_p("picture", OUT),), scope="set", gpu=False))
_add(Stage(
    "report", "vidseg_cli.cli.report:report",
    "One self-contained HTML page over a folder of outputs.",
    reads=(_p("outputs"), _p("ground-truth", "--gt", optional=True)),
    writes=(_p("report", OUT),), scope="set", gpu=False))
_add(Stage(
    "synth", "vidseg_cli.cli.synth:synth",
    "Generate a labelled synthetic set of untrimmed action videos.",
    reads=(), writes=(_p("video|labels|ground-truth", OUT),), scope="set", gpu=False))
_add(Stage(
    "train segment", "vidseg_cli.cli.train_segment:train_segment",
    "3DFCN (32s, 8s) or Sep3D per-pixel segmentation.",
    reads=(_p("dataset", "--data"), _p("checkpoint", "--init", optional=True)),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train sep3d-head", "vidseg_cli.cli.train_segment_head:train_sep3d_head",
    "Sep3D's action head on a frozen Sep3D, or jointly (--joint).",
    reads=(_p("dataset", "--data"), _p("checkpoint", "--segmenter")),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train backbone", "vidseg_cli.cli.train_fsn:train_backbone",
    "A 2D CNN frame classifier (TSN-style) for extract-features.",
    reads=(_p("frames"), _p("ground-truth", "--gt"), _p("checkpoint", "--init", optional=True)),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train fsn", "vidseg_cli.cli.train_fsn:train_fsn",
    "The FSN temporal CNN on features (or end to end from frames).",
    reads=(_p("features"), _p("frames", when="--end-to-end"), _p("ground-truth", "--gt"),
           _p("checkpoint", "--backbone", optional=True, when="--end-to-end")),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train wfsn", "vidseg_cli.cli.train_fsn:train_wfsn",
    "The weakly supervised FSN from video-level labels.",
    reads=(_p("features"), _p("ground-truth", "--gt")),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train scnn", "vidseg_cli.cli.train_scnn:train_scnn",
    "S-CNN proposal, classification or localization network.",
    reads=(_p("dataset", "--data"), _p("ground-truth", "--gt", optional=True),
           _p("video|frames", "--videos", optional=True),
           _p("video", "--trimmed", optional=True),
           _p("checkpoint", "--init", optional=True)),
    writes=(_p("run", OUT),), scope="set", gpu=True))
_add(Stage(
    "train segment-tube", "vidseg_cli.cli.train_segment_tube:train_segment_tube",
    "Segment-tube's proposal and classification LSTMs on a C3D trunk.",
    reads=(_p("dataset", "--data"), _p("ground-truth", "--gt", optional=True),
           _p("video|frames", "--videos", optional=True), _p("checkpoint", "--init")),
    writes=(_p("run", OUT),), scope="set", gpu=True))


def top_level() -> list[Stage]:
    """Stages called as `vidseg NAME` (not through a group such as `train`)."""
    return [STAGES.get(n) for n in STAGES.names() if len(n.split()) == 1]


def in_group(group: str) -> list[Stage]:
    """Stages called as `vidseg GROUP NAME`, e.g. the training commands."""
    return [STAGES.get(n) for n in STAGES.names() if n.split()[0] == group and " " in n]


def catalogue_json() -> dict[str, Any]:
    return {
        "stages": [STAGES.get(n).to_json() for n in STAGES.names()],
        "outside_kinds": OUTSIDE_KINDS,
    }
