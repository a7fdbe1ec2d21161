"""`vidseg localize`: temporal action detections by a named method (api/localize.py)."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import (
    device_option,
    fail,
    finish,
    jobs_for,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

_METHODS = ("fsn", "wfsn", "scnn")  # kept in step with api/localize.py METHODS (tested)


@click.command("localize")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--method", type=click.Choice(_METHODS), default="fsn", show_default=True,
              help="fsn/wfsn read features files; scnn reads proposals files.")
@click.option("--weights", required=True, type=click.Path(),
              help="Checkpoint of the method's network (made by `vidseg train`).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 (one input) or folder: <video_id>.detections.h5, and for fsn/wfsn "
                   "<video_id>.frame_scores.h5 beside it.")
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
    from vidseg_cli.api.localize import LocalizeOptions, make_localizer
    from vidseg_cli.errors import InputError

    if (fuse_features is None) != (fuse_weights is None):
        fail("localize", "--fuse and --fuse-weights go together")
    if method != "fsn" and fuse_features:
        fail("localize", "--fuse is for --method fsn")
    if method != "scnn" and frames:
        fail("localize", "--frames is for --method scnn")
    if method == "scnn" and segment_score:
        fail("localize", "--segment-score is for --method fsn or wfsn")
    if method != "wfsn" and video_threshold > 0:
        fail("localize", "--video-threshold is for --method wfsn")
    opts = LocalizeOptions(weights=weights, nms_iou=nms_iou, top_k=top_k, device=device, amp=amp,
                           batch_size=batch_size, fuse_features=fuse_features,
                           fuse_weights=fuse_weights, frames=frames, segment_score=segment_score,
                           video_threshold=video_threshold, quiet=quiet,
                           command=command_line())
    outputs = resolve_outputs("localize", list(inputs), out, "detections")
    try:
        run = make_localizer(method, opts)
    except (InputError, ValueError) as e:
        fail("localize", str(e))
    in_kind = "proposals" if method == "scnn" else "features"
    res = run_batch("localize", jobs_for(inputs, outputs, in_kind, "detections"),
                    lambda job: run(job.inputs[in_kind], job.outputs["detections"]),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    finish("localize", res, len(inputs), json_out, {"method": method, "results": res.results},
           quiet=quiet)
