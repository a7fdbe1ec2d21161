"""`vidseg crf-refine`: dense CRF refinement of per-pixel scores (3DFCN §3.6,
stages/crf.py)."""

from __future__ import annotations

from pathlib import Path

import click

from vidseg_cli.cli.common import (
    Job,
    expand_inputs,
    fail,
    finish,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line
from vidseg_cli.errors import InputError

STAGE = "crf-refine"


def _frames_by_id(frames_args: list[str], quiet: bool) -> dict[str, Path]:
    from vidseg_cli.store.pairing import index_by_video_id

    files = expand_inputs(STAGE, frames_args, ("frames",), quiet)
    try:
        out = index_by_video_id(files, what="frames")
    except InputError as e:
        fail(STAGE, str(e))
    if not out:
        fail(STAGE, "no frames files given")
    return out


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
    from vidseg_cli.api import crf_refine as api
    from vidseg_cli.stages.crf import CRFParams
    from vidseg_cli.store import output_name
    from vidseg_cli.store.pairing import partner_of, read_ids_and_kinds, read_video_ids

    params = CRFParams(w1=w1, theta_alpha=theta_alpha, theta_beta=theta_beta, w2=w2,
                       theta_gamma=theta_gamma, iterations=iterations)
    files = expand_inputs(STAGE, list(scores), ("scores",), quiet)
    ids = read_video_ids(files)
    frames = _frames_by_id(list(frames_args), quiet)
    outputs = resolve_outputs(STAGE, [str(f) for f in files], out, "labels", ids)
    refiner = api.load(api.Options(params=params, jobs=jobs, tolerance=tolerance, quiet=quiet,
                                   command=command_line()))
    work = []
    for f, vid, o in zip(files, ids, outputs):
        outs = {"labels": o}
        if keep_probs:  # beside the labels; the job is done only when both exist
            outs["scores"] = o.parent / output_name(vid, "scores")
        work.append(Job({"scores": str(f), "frames": frames.get(vid)}, outs))

    def one(job: Job) -> api.RefineSummary:
        src = job.inputs["scores"]
        if job.inputs["frames"] is None:  # fails in its turn, as any bad input
            # its id came from its name if it cannot be read: the scores file's own fault first
            read_ids_and_kinds([src], "scores", strict=True)
            partner_of(src, ids[files.index(Path(src))], frames, what="frames", among="--frames")
        return refiner.run(job.inputs, job.outputs)

    res = run_batch(STAGE, work, one, overwrite=overwrite, jobs=1, quiet=quiet, describe="videos")
    finish(STAGE, res, len(files), json_out, {"results": res.results}, quiet=quiet)
