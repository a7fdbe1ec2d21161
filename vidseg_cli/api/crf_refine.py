"""crf-refine: dense CRF refinement of a per-pixel scores file on its frames (3DFCN §3.6,
stages/crf.py), written as a labels file, and with a "scores" output also the refined
marginals.

    refiner = load(Options(params=CRFParams(iterations=5)))
    summary = refiner.run({"scores": "v.scores.h5", "frames": "v.frames.h5"},
                          {"labels": "out/v.labels.h5", "scores": "out/v.scores.h5"})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidseg_cli import store
from vidseg_cli.api.action_scores import carried_action_scores
from vidseg_cli.api.base import REPLACED_INPUT, Ports, Summary, one, replaced_input
from vidseg_cli.errors import InputError
from vidseg_cli.progress import progress_bar
from vidseg_cli.stages.crf import CRFParams, refine_frames
from vidseg_cli.stages.hmm.recursions import ProbabilityError, check_probs

STAGE = "crf-refine"


@dataclass
class Options:
    params: CRFParams = field(default_factory=CRFParams)  # §4.2's settings by default
    jobs: int = 1  # joblib processes over the frames of a video
    tolerance: float | None = 1e-3  # refuse class probabilities summing to 1 +- more; None: unchecked
    quiet: bool = True  # no progress bar over a video's frames
    command: str | None = None  # argv for provenance


@dataclass
class RefineSummary(Summary):
    input: str
    frames: str
    output: str
    probs: str | None  # the refined marginals' file, when written
    num_frames: int
    upsampled: bool  # the scores were coarser than the frames (spatial_stride > 1)


def load(opts: Options) -> CrfRefiner:
    return CrfRefiner(opts)


def _cover_problem(hw: tuple[int, int], stride: int, frame_hw: tuple[int, int]) -> str | None:
    """Why scores of size hw at `stride` can't be the scores of frames of frame_hw."""
    (h, w), (fh, fw) = hw, frame_hw
    full = (h * stride, w * stride)
    if stride == 1 and full != (fh, fw):
        return f"scores are {w}x{h} (WxH), the frames {fw}x{fh}"
    if not (full[0] >= fh > full[0] - stride and full[1] >= fw > full[1] - stride):
        return (f"scores of {w}x{h} (WxH) at spatial_stride {stride} don't cover the frames' "
                f"{fw}x{fh}")
    return None


class CrfRefiner:
    """Refines scores files with one set of CRF settings."""

    def __init__(self, opts: Options):
        self.opts = opts

    def run(self, inputs: Ports, outputs: Ports) -> RefineSummary:
        """Refine inputs["scores"] on inputs["frames"] into outputs["labels"], and the
        marginals into outputs["scores"] when given."""
        probs_dst = one(outputs, "scores", STAGE) if "scores" in outputs else None
        return self._refine(one(inputs, "scores", STAGE), one(inputs, "frames", STAGE),
                            one(outputs, "labels", STAGE), probs_dst)

    def _refine(self, src: Path, frames_path: Path, dst: Path, probs_dst: Path | None) -> RefineSummary:
        o = self.opts
        keep_probs = probs_dst is not None
        with store.open_record(src, "scores") as rec, store.open_record(frames_path, "frames") as fr:
            outs = {"labels": dst, **({"scores": probs_dst} if probs_dst else {})}
            if replaced_input({"scores": src}, outs):
                raise InputError(src, REPLACED_INPUT)
            probs, frames = rec["probs"], fr["frames"]
            t, c, h, w = probs.shape
            tf, fh, fw, _ = frames.shape
            if t != tf:
                raise InputError(src, f"{t} frames of scores, but the frames file {frames_path} has {tf}")
            if c > 256:
                raise InputError(src, f"{c} classes do not fit a labels file's uint8 class indices")
            stride = int(rec.attrs.get("spatial_stride", 1) or 1)
            if stride < 1:
                raise InputError(src, f"'spatial_stride' should be >= 1, found {stride}")
            problem = _cover_problem((h, w), stride, (fh, fw))
            if problem:
                raise InputError(src, f"{problem} ({frames_path})")

            def score_frames() -> Iterator[np.ndarray]:
                for i in range(t):
                    p = np.asarray(probs[i])  # C x h x w
                    if o.tolerance is not None:
                        try:
                            check_probs(torch.from_numpy(p.reshape(1, c, h * w)),
                                        lambda j: f"pixel (y={j // w}, x={j % w})", o.tolerance, i)
                        except ProbabilityError as e:
                            raise InputError(src, str(e)) from None
                    yield p

            def images() -> Iterator[np.ndarray]:
                for i in range(t):
                    yield np.asarray(frames[i])  # H x W x 3

            meta = dict(video_id=rec.video_id, fps=rec.fps, inputs=[src, frames_path],
                        class_names=rec.class_names, command=o.command)
            extra = {"postprocess": STAGE,
                     **{f"crf_{k}": v for k, v in o.params.as_dict().items()}}
            labels = np.empty((t, fh, fw), np.uint8)  # T x H x W
            # The marginals (T x C x H x W float32, 88x the labels for 22 classes) are
            # streamed into their file frame by frame; it is complete before the labels file,
            # whose presence means done.
            with contextlib.ExitStack() as stack:
                probs_attrs = dict(extra)  # the labels file holds no action scores
                marg = stack.enter_context(store.ScoresWriter(
                    probs_dst, (t, c, fh, fw), attrs=probs_attrs,
                    extra=carried_action_scores(rec, probs_attrs), **meta)) if keep_probs else None
                adv = stack.enter_context(progress_bar(t, f"{STAGE} {rec.video_id} (frames)", o.quiet))
                for i, (lab, m) in enumerate(refine_frames(images(), score_frames(), stride=stride,
                                                           params=o.params, jobs=o.jobs,
                                                           keep_probs=keep_probs, progress=adv)):
                    labels[i] = lab
                    if marg is not None:
                        marg[i] = m
        store.write_labels(dst, labels, attrs=extra, num_frames=t, **meta)
        return RefineSummary(input=str(src), frames=str(frames_path), output=str(dst),
                             probs=str(probs_dst) if probs_dst else None, num_frames=t,
                             upsampled=stride > 1)
