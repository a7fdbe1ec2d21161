"""`segment-3d` as a typed function: frames file in, scores file (per-pixel posteriors) out.

    seg = Segment3D.load(Options(model="3dfcn-8s", weights="run/best.ckpt"))
    seg.segment_file("v.frames.h5", "v.scores.h5")

The inference itself (3DFCN tiling, Sep3D clips, the Sep3D action head) is
infer/segmenter.py; this module loads the checkpoint into it, reads the frames file and
writes the scores file: the posteriors, and for a `sep3d+head` checkpoint the optional
`action_scores` with `action_names`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError
from vidseg_cli.infer.segmenter import SEGMENT_MODELS, Segmenter

STAGE = "segment-3d"


@dataclass
class Options:
    model: str  # "3dfcn-8s", "3dfcn-32s" or "sep3d": the checkpoint must be for it
    weights: str  # our checkpoint (train segment's best.ckpt / last.ckpt)
    device: str = "auto"  # auto|cpu|cuda[:i]
    amp: bool = False  # mixed precision (float16 on CUDA, bfloat16 on CPU)
    out_stride: int = 1  # posteriors averaged over N x N pixel blocks (spatial_stride)
    max_memory: int | None = None  # bytes for one 3DFCN trunk pass; tiles in time above it
    clip_stride: int = 4  # Sep3D: frames between clip starts
    batch_size: int = 4  # Sep3D: clips per forward pass
    command: str | None = None  # argv for provenance


@dataclass
class ScoresSummary(Summary):
    input: str
    output: str
    video_id: str
    num_frames: int
    shape: list[int]
    frames_with_actor: int | None = None  # with Sep3D's action head only
    warnings: list[str] = field(default_factory=list)  # lines for the user, not in --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        if d["frames_with_actor"] is None:
            d.pop("frames_with_actor")
        return d


def _option(name: str) -> property:
    """A Segmenter setting read from and written to the command's options."""
    return property(lambda self: getattr(self.opts, name), lambda self, v: setattr(self.opts, name, v))


class Segment3D(Segmenter):
    """The Segmenter of a command: its settings live in `opts`; `segment_file` runs one
    frames file."""

    amp = _option("amp")
    out_stride = _option("out_stride")
    max_memory = _option("max_memory")
    clip_stride = _option("clip_stride")
    batch_size = _option("batch_size")

    def __init__(self, model, classes: Sequence[str], preprocess: dict[str, Any], opts: Options, device,
                 head=None, action_names: Sequence[str] | None = None):
        self.opts = opts
        super().__init__(model, classes, preprocess, model_name=opts.model, device=device, amp=opts.amp,
                         out_stride=opts.out_stride, max_memory=opts.max_memory,
                         clip_stride=opts.clip_stride, batch_size=opts.batch_size,
                         head=head, action_names=action_names)

    def run(self, inputs: Ports, outputs: Ports) -> ScoresSummary:
        """Segment the frames file inputs["frames"] into the scores file outputs["scores"]."""
        return self.segment_file(one(inputs, "frames", STAGE), one(outputs, "scores", STAGE))

    def segment_file(self, frames_path: str | Path, out_path: str | Path) -> ScoresSummary:
        """Read a frames file, predict, write a scores file."""
        from vidseg_cli import store

        try:
            rec = store.read_frames(frames_path, load_frames=True)
        except store.StoreError as e:
            raise InputError(e.path, e.problem) from None
        frames = rec["frames"]
        warnings = []
        if frames.shape[0] == 0:  # DESIGN.md: too short for a stage -> warning, empty valid output
            warnings.append(f"{frames_path}: no frames; wrote an empty scores file")
            probs, actions = self._no_frames(*frames.shape[1:3])
        else:
            probs, actions = self.predict(frames, frames_path, with_actions=True)
        attrs: dict[str, Any] = {
            "segment3d_model": self.opts.model,
            "segment3d_weights": str(Path(self.opts.weights).resolve()),
            "segment3d_preprocess": json.dumps(self.preprocess),
        }
        if self.opts.out_stride > 1:
            attrs["spatial_stride"] = int(self.opts.out_stride)
        meta = dict(video_id=rec.video_id, num_frames=int(frames.shape[0]), fps=rec.fps,
                    inputs=[frames_path], class_names=self.classes, command=self.opts.command)
        if actions is None:
            store.write_scores(out_path, probs, attrs=attrs, **meta)
        else:  # Sep3D's head: the optional dataset and its names (store/kinds.py)
            if actions.shape != (probs.shape[0], len(self.action_names)):
                raise RuntimeError(f"action scores {actions.shape} for {len(self.action_names)} actions")
            attrs["action_names"] = list(self.action_names)
            store.write_scores(out_path, probs, extra={"action_scores": actions}, attrs=attrs, **meta)
        return ScoresSummary(
            input=str(frames_path), output=str(out_path), video_id=rec.video_id,
            num_frames=int(frames.shape[0]), shape=list(probs.shape),
            frames_with_actor=(None if actions is None
                               else int(np.count_nonzero(~np.isnan(actions[:, 0])))),
            warnings=warnings)

    def _no_frames(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        """What `predict` gives for a video of no frames: posteriors (0, C, H', W'), and
        action scores (0, A) with an action head."""
        s = self.opts.out_stride
        probs = np.zeros((0, len(self.classes), -(-h // s), -(-w // s)), np.float32)
        actions = None if self.head is None else np.zeros((0, len(self.action_names)), np.float32)
        return probs, actions


def load(opts: Options) -> Segment3D:
    """Build the model from `opts.weights` (which must be for `opts.model`)."""
    from vidseg_cli.models.checkpoint.format import build_from_checkpoint
    from vidseg_cli.models.preprocess import check_record
    from vidseg_cli.runtime import resolve_device

    if opts.model not in SEGMENT_MODELS:
        raise ValueError(f"unknown model '{opts.model}' (known: {', '.join(SEGMENT_MODELS)})")
    device = resolve_device(opts.device)
    # A Sep3D trained with its action head (`train sep3d-head`) runs as sep3d.
    expect = (opts.model, "sep3d+head") if opts.model == "sep3d" else opts.model
    model, ckpt = build_from_checkpoint(opts.weights, expect_model=expect)
    given = check_record(ckpt.get("preprocess"), opts.weights)
    if ckpt["model"] == "sep3d+head":
        return Segment3D(model.segmenter.to(device).eval(), ckpt["classes"], given, opts, device,
                         head=model.head, action_names=model.action_names)
    return Segment3D(model.to(device).eval(), ckpt["classes"], given, opts, device)
