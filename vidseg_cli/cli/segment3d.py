"""`vidseg segment-3d`: per-pixel class posteriors with 3DFCN (32s, 8s) or Sep3D."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import (
    device_option,
    expand_inputs,
    fail,
    finish,
    jobs_for,
    json_option,
    overwrite_option,
    parse_bytes,
    quiet_option,
    resolve_device,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

STAGE = "segment-3d"


def _bytes(ctx, param, value):
    """--max-memory: a size (cli.common.parse_bytes) or 'none'."""
    if value is None or str(value).strip().lower() in ("none", "0"):
        return None
    return parse_bytes(ctx, param, value)


@click.command("segment-3d")
@click.argument("frames", nargs=-1, required=True, type=click.Path())
@click.option("--model", required=True, type=click.Choice(["3dfcn-8s", "3dfcn-32s", "sep3d"]),
              help="3dfcn-32s/3dfcn-8s: the whole video in one fully convolutional pass (3DFCN "
                   "§3.3-3.4); sep3d: 8-frame clips, overlapping posteriors averaged (Sep3D §3).")
@click.option("--weights", required=True, type=click.Path(),
              help="Checkpoint from `vidseg train segment` (it must be for --model), or for "
                   "sep3d one from `vidseg train sep3d-head`, which also writes per-frame "
                   "action scores (action_scores, for evaluate's frame-mAP).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 file (one input) or folder (<video_id>.scores.h5 per input).")
@click.option("--out-stride", type=click.IntRange(1), default=1, show_default=True,
              help="Write posteriors averaged over N x N pixel blocks (attribute spatial_stride).")
@click.option("--max-memory", callback=_bytes, default="2G", show_default=True, metavar="SIZE",
              help="3DFCN: memory for one trunk pass; longer videos run in exact temporal tiles "
                   "('none': always one pass).")
@click.option("--clip-stride", type=click.IntRange(1), default=4, show_default=True,
              help="Sep3D: frames between the starts of overlapping clips.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True,
              help="Sep3D: clips per forward pass.")
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision (float16 on CUDA, bfloat16 on CPU).")
@overwrite_option
@quiet_option
@json_option
def segment_3d(frames, model, weights, out, out_stride, max_memory, clip_stride, batch_size,
               device, amp, overwrite, quiet, json_out):
    """Per-pixel class posteriors (softmax) of FRAMES files (or folders of them) with a
    3DFCN or Sep3D checkpoint, one scores file per video (class names from the checkpoint).

    Frames are prepared as at training time (the checkpoint's preprocessing: resize to the
    trained short side, mean/std), and the posteriors are brought back to the frame size.
    """
    from vidseg_cli.api.segment3d import Options, load
    from vidseg_cli.errors import InputError
    from vidseg_cli.store.pairing import read_video_ids

    resolve_device(STAGE, device)  # an unavailable device is a usage error
    inputs = [str(p) for p in expand_inputs(STAGE, list(frames), ["frames"], quiet)]
    opts = Options(model=model, weights=weights, device=device, amp=amp,
                            out_stride=out_stride, max_memory=max_memory, clip_stride=clip_stride,
                            batch_size=batch_size, command=command_line())
    try:
        seg = load(opts)
    except InputError as e:
        fail(STAGE, str(e))
    except ValueError as e:
        fail(STAGE, str(e))
    outputs = resolve_outputs(STAGE, inputs, out, "scores", read_video_ids(inputs, "frames"))

    res = run_batch(STAGE, jobs_for(inputs, outputs, "frames", "scores"),
                    lambda job: seg.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    finish(STAGE, res, len(inputs), json_out, {"results": res.results}, quiet=quiet)
