"""`vidseg crf-refine`: dense CRF refinement of per-pixel scores (3DFCN §3.6,
stages/crf.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from vidseg_cli.cli.common import (
    fail,
    finish,
    json_option,
    notice,
    overwrite_option,
    progress_bar,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.errors import InputError

STAGE = "crf-refine"


def _files_of_kind(paths: list[str], kind: str, quiet: bool) -> list[Path]:
    """Files as given; folders expanded to their files of `kind`."""
    from vidseg_cli import store
    from vidseg_cli.datasets.masks import find_h5_files

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)
            continue
        found = find_h5_files(p)
        keep = []
        for f in found:
            try:
                if store.peek_kind(f) == kind:
                    keep.append(f)
            except store.StoreError:
                pass
        if not keep:
            fail(STAGE, f"{p}: no {kind} files in this folder")
        if len(keep) < len(found):
            notice(STAGE, f"{p}: {len(found) - len(keep)} file(s) of other kinds ignored", quiet)
        files.extend(keep)
    return files


def _video_ids(files: list[Path]) -> list[str]:
    """Each file's video_id attribute (a bad file: its name, the error comes later)."""
    from vidseg_cli import store

    ids = []
    for f in files:
        try:
            with store.open_record(f) as rec:
                ids.append(str(rec.video_id))
        except store.StoreError:
            ids.append(store.video_id_of(f))
    return ids


def _frames_by_id(frames_args: list[str], quiet: bool) -> dict[str, Path]:
    out: dict[str, Path] = {}
    files = _files_of_kind(frames_args, "frames", quiet)
    for f, vid in zip(files, _video_ids(files)):
        if vid in out:
            fail(STAGE, f"{f}: a second frames file for video '{vid}' (first: {out[vid]})")
        out[vid] = f
    if not out:
        fail(STAGE, "no frames files given")
    return out


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


def refine_file(src: Path, frames_path: Path, dst: Path, *, params: Any, jobs: int,
                keep_probs: bool, tolerance: float | None, quiet: bool) -> dict[str, Any]:
    """CRF-refine one scores file on its frames; write labels (and refined scores)."""
    import numpy as np
    import torch

    from vidseg_cli import store
    from vidseg_cli.stages.crf import refine_frames
    from vidseg_cli.stages.hmm import ProbabilityError, check_probs

    with store.open_record(src, "scores") as rec, store.open_record(frames_path, "frames") as fr:
        probs_dst = dst.parent / store.output_name(rec.video_id, "scores") if keep_probs else None
        if src.resolve() in (dst.resolve(), probs_dst.resolve() if probs_dst else None):
            raise InputError(src, "an output would replace this input; choose another -o")
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
                if tolerance is not None:
                    try:
                        check_probs(torch.from_numpy(p.reshape(1, c, h * w)),
                                    lambda j: f"pixel (y={j // w}, x={j % w})", tolerance, i)
                    except ProbabilityError as e:
                        raise InputError(src, str(e)) from None
                yield p

        def images() -> Iterator[np.ndarray]:
            for i in range(t):
                yield np.asarray(frames[i])  # H x W x 3

        labels = np.empty((t, fh, fw), np.uint8)  # T x H x W
        marg = np.empty((t, c, fh, fw), np.float32) if keep_probs else None  # T x C x H x W
        with progress_bar(t, f"{STAGE} {rec.video_id} (frames)", quiet) as adv:
            for i, (lab, m) in enumerate(refine_frames(images(), score_frames(), stride=stride,
                                                       params=params, jobs=jobs,
                                                       keep_probs=keep_probs, progress=adv)):
                labels[i] = lab
                if marg is not None:
                    marg[i] = m
        meta = dict(video_id=rec.video_id, num_frames=t, fps=rec.fps,
                    inputs=[src, frames_path], class_names=rec.class_names,
                    command=" ".join(["vidseg", *sys.argv[1:]]))
        extra = {"postprocess": "crf-refine", **{f"crf_{k}": v for k, v in params.as_dict().items()}}
    if marg is not None:
        store.write_scores(probs_dst, marg, attrs=extra, **meta)
    store.write_labels(dst, labels, attrs=extra, **meta)  # last: its presence means done
    return {"input": str(src), "frames": str(frames_path), "output": str(dst),
            "probs": str(probs_dst) if probs_dst else None, "num_frames": t,
            "upsampled": stride > 1}


@click.command("crf-refine")
@click.argument("scores", nargs=-1, required=True, type=click.Path())
@click.option("--frames", "frames_args", multiple=True, required=True, type=click.Path(),
              help="Frames file(s) or folder(s); paired with SCORES by video_id. Repeatable.")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output labels .h5 file (one input) or folder (<video_id>.labels.h5).")
@click.option("--w1", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Appearance (bilateral) kernel weight w(1) (3DFCN §4.2).")
@click.option("--theta-alpha", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Appearance kernel's spatial width, pixels (§4.2).")
@click.option("--theta-beta", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Appearance kernel's colour width, RGB units (§4.2).")
@click.option("--w2", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Smoothness (Gaussian) kernel weight w(2) (§4.2).")
@click.option("--theta-gamma", type=click.FloatRange(min=0, min_open=True), default=3.0,
              show_default=True, help="Smoothness kernel's width, pixels (§4.2).")
@click.option("--iterations", type=click.IntRange(0), default=10, show_default=True,
              help="Mean-field iterations.")
@click.option("--keep-probs", is_flag=True,
              help="Also write the refined marginals as <video_id>.scores.h5 beside the labels.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Refuse scores whose class probabilities sum to 1 +- more than this.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="Parallel workers (joblib processes) over the frames of a video.")
@overwrite_option
@quiet_option
@json_option
def crf_refine(scores, frames_args, out, w1, theta_alpha, theta_beta, w2, theta_gamma,
               iterations, keep_probs, tolerance, jobs, overwrite, quiet, json_out):
    """Refine per-pixel SCORES (softmax scores, or an HMM belief from hmm-smooth) with a
    fully connected CRF on each frame (3DFCN §3.6, Eq. (5)-(6)): unary -log P, a Potts
    pairwise term of an appearance kernel (position and colour) and a smoothness kernel,
    mean-field inference (pydensecrf's DenseCRF2D). Defaults are the paper's §4.2
    settings. Scores coarser than the frames (spatial_stride) are upsampled bilinearly.
    Writes a labels file (argmax of the refined marginals) per video.
    """
    from vidseg_cli.stages.crf import CRFParams

    params = CRFParams(w1=w1, theta_alpha=theta_alpha, theta_beta=theta_beta, w2=w2,
                       theta_gamma=theta_gamma, iterations=iterations)
    files = _files_of_kind(list(scores), "scores", quiet)
    ids = _video_ids(files)
    frames = _frames_by_id(list(frames_args), quiet)
    outputs = resolve_outputs(STAGE, [str(f) for f in files], out, "labels", ids)

    def one(item: tuple[str, Path]) -> dict[str, Any]:
        src = Path(item[0])
        vid = ids[files.index(src)]
        if vid not in frames:
            raise InputError(src, f"no frames file for video '{vid}' among --frames")
        return refine_file(src, frames[vid], item[1], params=params, jobs=jobs,
                           keep_probs=keep_probs, tolerance=tolerance, quiet=quiet)

    res = run_batch(STAGE, list(zip([str(f) for f in files], outputs)), one,
                    overwrite=overwrite, jobs=1, quiet=quiet, describe="videos")
    finish(STAGE, res, len(files), json_out, {"results": res.results}, quiet=quiet)
