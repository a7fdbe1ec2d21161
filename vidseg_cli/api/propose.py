"""`propose`: S-CNN's multi-scale windows (§3.1), scored by the proposal network (§3.3).

    prop = propose.load(propose.Options(weights="proposal.ckpt"))
    summary = prop.run({"frames": "v.frames.h5"}, {"proposals": "v.proposals.h5"})

Every window of 16..512 frames with 75% overlap (the lengths and overlap the network was
trained with, from its checkpoint) becomes 16 frames sampled uniformly, prepared as in
training (resize, centre crop), and is scored in batches; windows with P(action) >=
`threshold` (0.7, S-CNN §3.3) are kept. `method="sliding"` keeps every window with score 1
and loads no network: S-CNN without the proposal network (Table 3). A video shorter than
the shortest window has none: an empty, valid proposals file and a warning (in the
summary's `warnings`, which `to_json` leaves out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError
from vidseg_cli.infer.scnn import score_windows
from vidseg_cli.models.scnn import load_stage_network
from vidseg_cli.runtime import resolve_device
from vidseg_cli.stages.windows import SCNN_LENGTHS, SCNN_OVERLAP, multiscale_windows

STAGE = "propose"
METHODS = ("scnn", "sliding")


@dataclass
class Options:
    weights: str | None = None  # proposal-network checkpoint (method scnn)
    method: str = "scnn"  # scnn | sliding
    threshold: float = 0.7  # keep windows with P(action) >= this (S-CNN §3.3)
    lengths: tuple[int, ...] | None = None  # window lengths (default: the checkpoint's / §3.1)
    overlap: float | None = None  # window overlap (default: the checkpoint's / 0.75)
    batch_size: int = 64
    device: str = "auto"
    amp: bool = False
    command: str | None = None


@dataclass
class ProposalsSummary(Summary):
    input: str
    output: str
    windows: int  # windows of the video
    kept: int  # windows written as proposals
    warnings: list[str] = field(default_factory=list)  # printed by the command, not in --json

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("warnings")
        return d


class Proposer:
    """Scores one frames file's windows and writes its proposals file."""

    def __init__(self, opts: Options, model=None, device=None):
        self.opts, self.model, self.device = opts, model, device
        if model is not None:
            self.lengths = tuple(opts.lengths) if opts.lengths else model.window_lengths
            self.overlap = opts.overlap if opts.overlap is not None else model.window_overlap
        else:
            self.lengths = tuple(opts.lengths) if opts.lengths else SCNN_LENGTHS
            self.overlap = opts.overlap if opts.overlap is not None else SCNN_OVERLAP

    def run(self, inputs: Ports, outputs: Ports) -> ProposalsSummary:
        """The proposals of inputs["frames"], written to outputs["proposals"]."""
        opts, model, lengths, overlap = self.opts, self.model, self.lengths, self.overlap
        one(inputs, "frames", STAGE)
        frames_path = str(inputs["frames"])  # as given: it names the video in messages
        out = one(outputs, "proposals", STAGE)
        warnings = []
        with store.open_record(frames_path, "frames") as rec:
            t = rec.num_frames
            windows = multiscale_windows(t, lengths, overlap)  # N x 2 [start, end)
            if len(windows) == 0:
                warnings.append(f"{frames_path}: {t} frames, shorter than the shortest window "
                                f"({min(lengths)}); no proposals")
            if model is None or len(windows) == 0:
                scores = np.ones(len(windows))
            else:
                try:
                    scores = score_windows(model, rec["frames"], windows, opts.batch_size, self.device,
                                           opts.amp)[:, 1]  # P(action)
                except ValueError as e:  # ModelInputError: frames the network cannot take
                    raise InputError(frames_path, str(e)) from None
            keep = scores >= opts.threshold if model is not None else np.ones(len(windows), bool)
            attrs = {"method": opts.method, "window_lengths": list(lengths), "window_overlap": overlap,
                     "num_windows": len(windows)}
            if model is not None:
                attrs["threshold"] = opts.threshold
            store.write_proposals(out, windows[keep].astype(np.float64), scores[keep],
                                  video_id=rec.video_id, num_frames=t, fps=rec.fps,
                                  inputs=[frames_path], command=opts.command, attrs=attrs)
        return ProposalsSummary(input=frames_path, output=str(out), windows=int(len(windows)),
                                kept=int(keep.sum()), warnings=warnings)


def load(opts: Options) -> Proposer:
    """The proposer of `opts.method`; for scnn, the proposal network loaded once."""
    if opts.method not in METHODS:
        raise ValueError(f"unknown proposal method '{opts.method}' (known: {', '.join(METHODS)})")
    if opts.method == "sliding":
        return Proposer(opts)
    if not opts.weights:
        raise ValueError("--method scnn needs --weights (the proposal network's checkpoint)")
    model = load_stage_network(opts.weights, ["proposal"])
    device = resolve_device(opts.device)
    model.to(device)
    return Proposer(opts, model, device)
