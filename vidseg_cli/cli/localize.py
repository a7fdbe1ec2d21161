"""`vidseg localize`: temporal action detections by a named method (api/localize.py)."""

from __future__ import annotations

import click

from vidseg_cli.api.localize import METHODS, STAGE
from vidseg_cli.cli.common import (
    Job,
    device_option,
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


@click.command(STAGE)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--method", type=click.Choice(METHODS.names()), default="fsn", show_default=True,
              help="fsn/wfsn read features files; scnn reads proposals files.")
@click.option("--weights", required=True, type=click.Path(),
              help="Checkpoint of the method's network (made by `vidseg train`).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 (one input) or folder: <video_id>.detections.h5; fsn/wfsn also "
                   "write frame scores beside it, named after it (a.h5: a.frame_scores.h5).")
@click.option("--nms-iou", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="NMS tIoU threshold (S-CNN 3.3, FSN 4.2: evaluation threshold 0.5 minus 0.1).")
@click.option("--top-k", type=click.IntRange(1), default=None, help="Keep at most K detections per video.")
@click.option("--fuse", "fuse_features", type=click.Path(), default=None,
              help="fsn: the flow stream's features (file or folder); frame scores of the two "
                   "streams are averaged (two-stream FSN).")
@click.option("--fuse-weights", type=click.Path(), default=None,
              help="fsn: the flow stream's FSN checkpoint (with --fuse).")
@click.option("--segment-score", type=click.Choice(["mean", "contrast"]), default=None,
              help="fsn/wfsn: score a grouped run by its mean probability (FSN 4.2; fsn's default) "
                   "or by its mean minus the mean just outside it (outer-inner contrast; wfsn's "
                   "default, as its scores have no background).")
@click.option("--video-threshold", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="wfsn: localize only the classes whose video-level score (the pooled score "
                   "WFSN is trained on) reaches this, and the top class (0: every class).")
@click.option("--frames", type=click.Path(), default=None,
              help="scnn: frames file or folder (default: the one recorded in the proposals file).")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision inference.")
@overwrite_option
@quiet_option
@json_option
def localize(inputs, method, weights, out, nms_iou, top_k, fuse_features, fuse_weights, segment_score,
             video_threshold, frames, batch_size, device, amp, overwrite, quiet, json_out):
    """Localize actions in time: INPUTS are features files (fsn, wfsn) or proposals files
    (scnn); writes detections (segments in frames, class, score) after class-aware NMS.
    """
    from vidseg_cli.api.localize import Options, frame_scores_path, load
    from vidseg_cli.errors import InputError

    if (fuse_features is None) != (fuse_weights is None):
        fail(STAGE, "--fuse and --fuse-weights go together")
    if method != "fsn" and fuse_features:
        fail(STAGE, "--fuse is for --method fsn")
    if method != "scnn" and frames:
        fail(STAGE, "--frames is for --method scnn")
    if method == "scnn" and segment_score:
        fail(STAGE, "--segment-score is for --method fsn or wfsn")
    if method != "wfsn" and video_threshold > 0:
        fail(STAGE, "--video-threshold is for --method wfsn")
    opts = Options(weights=weights, method=method, nms_iou=nms_iou, top_k=top_k, device=device, amp=amp,
                   batch_size=batch_size, fuse_weights=fuse_weights, segment_score=segment_score,
                   video_threshold=video_threshold, command=command_line())
    inputs = [str(p) for p in expand_inputs(STAGE, list(inputs),
                                            ["proposals"] if method == "scnn" else ["features"], quiet)]
    outputs = resolve_outputs(STAGE, inputs, out, "detections")
    try:
        localizer = load(opts)
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))
    work = []
    if method == "scnn":
        for i, o in zip(inputs, outputs):
            work.append(Job({"proposals": i, **({"frames": frames} if frames else {})}, {"detections": o}))
    else:  # frame scores beside the detections, named after them
        for i, o in zip(inputs, outputs):
            work.append(Job({"features": i, **({"flow-features": fuse_features} if fuse_features else {})},
                            {"detections": o, "frame_scores": frame_scores_path(o)}))
    res = run_batch(STAGE, work, lambda job: localizer.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    finish(STAGE, res, len(inputs), json_out, {"method": method, "results": res.results}, quiet=quiet)
