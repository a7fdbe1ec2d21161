"""hmm-smooth: the HMM belief P(l_t | Z_T) of 3DFCN §3.5, Eq. (1)-(4), for a scores file
(per-pixel, (T, C, H, W)) or a frame_scores file ((T, C)), written as the same kind.

    smoother = load(Options(hmm="hmm.h5", max_memory=512 << 20))
    summary = smoother.run({"scores": "v.scores.h5"}, {"scores": "v.smoothed.h5"})

The recursions are stages/hmm/'s; per-pixel beliefs are streamed into the output tile by
tile (store.ScoresWriter, chunked like the tiles), so memory stays near `max_memory`
whatever the video's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidseg_cli import store
from vidseg_cli.api.action_scores import carried_action_scores
from vidseg_cli.api.base import REPLACED_INPUT, Ports, Summary, one, replaced_input
from vidseg_cli.errors import InputError
from vidseg_cli.progress import progress_bar
from vidseg_cli.runtime import resolve_device
from vidseg_cli.stages.hmm.fit import check_hmm, same_classes
from vidseg_cli.stages.hmm.smooth import smooth
from vidseg_cli.stages.hmm.tiles import file_reserve, plan_tiles

STAGE = "hmm-smooth"
KINDS = ("scores", "frame_scores")


@dataclass
class Options:
    hmm: Any  # hmm-fit's hmm file, or its record (store.read_hmm)
    device: str = "auto"  # auto|cpu|cuda[:i]
    max_memory: int | None = 1 << 30  # bytes of working memory per video; pixels in tiles that fit
    min_prob: float = 1e-6  # posteriors below it are read as it (zeros would rule out every path)
    tolerance: float = 1e-3  # refuse class probabilities summing to 1 +- more than this
    threads: int = 1  # CPU threads over a video's pixel blocks
    log_space: bool = False  # per-pixel recursions in float64 log space
    score_prior: str = "hmm"  # posteriors divided by P(l_t) of Eq. (4) ("hmm") or not ("uniform")
    quiet: bool = True  # no progress bar over a video's tiles
    command: str | None = None  # argv for provenance


@dataclass
class SmoothSummary(Summary):
    input: str
    output: str
    kind: str  # "scores" or "frame_scores"
    shape: list[int]
    tiles: int


def load(opts: Options) -> HmmSmoother:
    """Read and check the HMM once, and the device."""
    if isinstance(opts.hmm, (str, os.PathLike)):
        path, rec = str(opts.hmm), store.read_hmm(opts.hmm)
    else:
        path, rec = str(opts.hmm.path), opts.hmm
    try:
        check_hmm(rec["prior"], rec["transition"])
    except ValueError as e:
        raise InputError(path, str(e)) from None
    return HmmSmoother(opts, rec, str(resolve_device(opts.device)))


class HmmSmoother:
    """Smooths scores files with one HMM."""

    def __init__(self, opts: Options, hmm_rec: Any, device: str):
        self.opts, self.hmm, self.device = opts, hmm_rec, device

    def run(self, inputs: Ports, outputs: Ports) -> SmoothSummary:
        """Smooth inputs["scores"] or inputs["frame_scores"] into the output of that kind."""
        kind = next((k for k in KINDS if k in inputs), None)
        if kind is None:
            raise TypeError(f"{STAGE}: no 'scores' or 'frame_scores' among {sorted(inputs)}")
        return self._smooth(one(inputs, kind, STAGE), one(outputs, kind, STAGE))

    def _smooth(self, src, dst) -> SmoothSummary:
        o, hmm_rec = self.opts, self.hmm
        if replaced_input({"scores": src}, {"scores": dst}):
            raise InputError(src, REPLACED_INPUT)
        kind = store.peek_kind(src)
        if kind not in KINDS:
            raise InputError(src, f"expected a scores or frame_scores file, found a {kind} file")
        with store.open_record(src, kind) as rec:
            diff = same_classes(rec.class_names, hmm_rec.class_names)
            if diff is not None:
                raise InputError(src, f"class list differs from the HMM's ({hmm_rec.path}): {diff}")
            probs = rec["probs"]  # lazy h5py dataset
            meta = dict(video_id=rec.video_id, fps=rec.fps, inputs=[src, hmm_rec.path],
                        class_names=rec.class_names, command=o.command)
            extra = {"postprocess": STAGE, "hmm_uid": hmm_rec.uid, "hmm_score_prior": o.score_prior}
            if "spatial_stride" in rec.attrs:
                extra["spatial_stride"] = rec.attrs["spatial_stride"]
            carried = carried_action_scores(rec, extra)
            common = dict(device=self.device, min_prob=o.min_prob, tolerance=o.tolerance,
                          threads=o.threads, log_space=o.log_space or None,
                          score_prior=o.score_prior)
            try:
                if kind == "frame_scores":  # (T, C): small, written whole
                    out = np.empty(probs.shape, np.float32)
                    smooth(probs, hmm_rec["prior"], hmm_rec["transition"], out=out, **common)
                    store.write_frame_scores(dst, out, attrs=extra, num_frames=rec.num_frames,
                                             **meta)
                    tiles = 1
                else:
                    out_dtype = np.float16 if probs.dtype == np.float16 else np.float32
                    # One plan for the output's chunks and smooth()'s tiles (passed to it), so
                    # every tile write fills whole chunks. Log space computes in float64.
                    plan = plan_tiles(probs.shape, probs.dtype.itemsize, o.max_memory,
                                      compute_itemsize=8 if o.log_space else 4,
                                      log_space=o.log_space,
                                      out_itemsize=np.dtype(out_dtype).itemsize,
                                      reserve=file_reserve(probs))
                    tiles = plan.count
                    # One chunk per frame and tile: each tile's write fills whole chunks.
                    chunks = (1, probs.shape[1], plan.rows, plan.cols)
                    with store.ScoresWriter(dst, probs.shape, dtype=out_dtype, chunks=chunks,
                                            attrs=extra, extra=carried, **meta) as writer, \
                            progress_bar(tiles, f"{STAGE} {rec.video_id} (tiles)",
                                         o.quiet or tiles < 2) as adv:
                        smooth(probs, hmm_rec["prior"], hmm_rec["transition"], out=writer.probs,
                               max_memory=o.max_memory, progress=adv, plan=plan, **common)
            except ValueError as e:
                raise InputError(src, str(e)) from None
        return SmoothSummary(input=str(src), output=str(dst), kind=kind,
                             shape=list(probs.shape), tiles=tiles)
