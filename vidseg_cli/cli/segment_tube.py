"""`vidseg segment-tube`: Segment-tube's alternating temporal localization and per-frame
segmentation (api/segment_tube.py)."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import (
    Job,
    device_option,
    expand_inputs,
    fail,
    finish,
    jobs_option,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_device,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

STAGE = "segment-tube"


def _ints(count: int | None):
    """click callback: '16,32' -> (16, 32), positive integers (exactly `count` of them)."""

    def parse(ctx, param, value):
        try:
            out = tuple(int(v) for v in str(value).split(","))
        except ValueError:
            raise click.BadParameter(f"expected integers separated by commas, got {value!r}") from None
        if not out or min(out) < 1 or (count is not None and len(out) != count):
            raise click.BadParameter(f"expected {count or 'some'} positive integers, got {value!r}")
        return out

    return parse


def _ladder(ctx, param, value):
    """click callback: '0.2,0.3' -> (0.2, 0.3), each in [0, 1]; 'none' -> ()."""
    if str(value).strip().lower() == "none":
        return ()
    try:
        out = tuple(float(v) for v in str(value).split(","))
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, or 'none', got {value!r}") from None
    if not all(0.0 <= v <= 1.0 for v in out):
        raise click.BadParameter(f"thresholds must be in [0, 1], got {value!r}")
    return out


@click.command(STAGE)
@click.argument("frames", nargs=-1, required=True, type=click.Path())
@click.option("--weights", required=True, type=click.Path(),
              help="Segment-tube checkpoint holding the C3D trunk and both LSTM networks "
                   "(docs/segment_tube.md).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Labels .h5 (one input) or folder (<video_id>.labels.h5 per input); the "
                   "detections go beside it, named after it (a.labels.h5: a.detections.h5).")
@click.option("--frame-scores", "with_frame_scores", is_flag=True,
              help="Also write α_t (Eq. 3) as frame scores beside the labels, for frame AP.")
@click.option("--gamma", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Eq. 4: frames with α_t above this are labelled with the video's class (§2.1).")
@click.option("--detection-ladder", "ladder", callback=_ladder, default="0.2,0.3,0.4,0.5",
              show_default=True, metavar="T,T|none",
              help="Detections also from the runs of α_t above each of these thresholds, scored by "
                   "their mean α (not the paper's; 'none': only the runs labelled by --gamma).")
@click.option("--detection-nms", "ladder_nms", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="tIoU above which a lower-scored detection of the ladder is dropped.")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True,
              help="Most rounds of temporal then spatial step; stops earlier when the frame labels "
                   "repeat and the cut changes under 1% of its superpixels (§2.3).")
@click.option("--video-class", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="The video's class k': highest mean (the paper) or sum of clip scores.")
@click.option("--clip-lengths", callback=_ints(None), default="16,32", show_default=True, metavar="N,N",
              help="Sliding-window lengths in frames (§2.1).")
@click.option("--clip-overlap", type=click.FloatRange(0, 1, max_open=True), default=0.75,
              show_default=True, help="Overlap of consecutive windows of one length (§2.1).")
@click.option("--clip-mask", type=click.Choice(["soft", "hard", "none"]), default="soft",
              show_default=True, help="Saliency-aware clips: pixels outside the mask blended "
                                      "toward the mean (soft), replaced by it (hard), or kept.")
@click.option("--mask-keep", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="κ of the soft mask: the share of a pixel outside the mask that is kept.")
@click.option("--saliency", type=click.Choice(["static", "motion"]), default="static",
              show_default=True, help="The initial mask B_o: fine-grained static saliency (§2.3) "
                                      "or difference from the temporal median (not the paper's).")
@click.option("--superpixels", type=click.IntRange(1), default=400, show_default=True,
              help="SLIC superpixels per frame (§2.2).")
@click.option("--work-size", type=click.IntRange(1), default=240, show_default=True,
              help="Short side, in pixels, frames are shrunk to for superpixels.")
@click.option("--beta", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Eq. 6: weight of the colour GMMs against the location GMMs.")
@click.option("--gmm-components", callback=_ints(2), default="5,3", show_default=True,
              metavar="COLOUR,LOCATION",
              help="Components of the colour and of the location GMMs, per side (Eq. 6).")
@click.option("--pairwise", type=click.Choice(["normalized", "literal"]), default="normalized",
              show_default=True, help="Eq. 7: GrabCut's normalised contrast (default) or as written.")
@click.option("--pairwise-weight", type=click.FloatRange(0), default=1.0, show_default=True,
              help="λ, the weight of every smoothness term.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True,
              help="Clips per trunk pass.")
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision inference.")
@jobs_option
@overwrite_option
@quiet_option
@json_option
def segment_tube(frames, weights, out, with_frame_scores, gamma, ladder, ladder_nms, rounds, video_class,
                 clip_lengths,
                 clip_overlap, clip_mask, mask_keep, saliency, superpixels, work_size, beta,
                 gmm_components, pairwise, pairwise_weight, batch_size, device, amp, jobs, overwrite,
                 quiet, json_out):
    """Localize the action of each FRAMES file in time and segment it in every frame
    (Segment-tube): one labels file per video (the video's class on the actor's pixels of
    its action frames) and its detections beside it.
    """
    from vidseg_cli.api.segment_tube import Options, beside, load
    from vidseg_cli.errors import InputError
    from vidseg_cli.infer.segment_tube import Settings
    from vidseg_cli.stages.segment_tube_spatial import SpatialParams
    from vidseg_cli.stages.superpixels import SuperpixelParams
    from vidseg_cli.store.pairing import read_video_ids

    resolve_device(STAGE, device)
    inputs = [str(p) for p in expand_inputs(STAGE, list(frames), ["frames"], quiet)]
    try:
        settings = Settings(
            gamma=gamma, ladder=ladder, ladder_nms=ladder_nms, rounds=rounds, clip_lengths=clip_lengths,
            clip_overlap=clip_overlap,
            video_class=video_class, clip_mask=clip_mask, mask_keep=mask_keep, saliency=saliency,
            superpixels=SuperpixelParams(count=superpixels, work_size=work_size),
            spatial=SpatialParams(beta=beta, colour_components=gmm_components[0],
                                  location_components=gmm_components[1], pairwise=pairwise,
                                  pairwise_weight=pairwise_weight),
            batch_size=batch_size)
        runner = load(Options(weights=weights, settings=settings, device=device, amp=amp,
                              command=command_line()))
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))
    outputs = resolve_outputs(STAGE, inputs, out, "labels", read_video_ids(inputs, "frames"))
    work = []
    for i, o in zip(inputs, outputs):
        outs = {"labels": o, "detections": beside(o, "detections")}
        if with_frame_scores:
            outs["frame_scores"] = beside(o, "frame_scores")
        work.append(Job({"frames": i}, outs))

    res = run_batch(STAGE, work, lambda job: runner.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=jobs, quiet=quiet)
    finish(STAGE, res, len(inputs), json_out, {"results": res.results}, quiet=quiet)
