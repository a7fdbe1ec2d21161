"""`vidseg propose`: S-CNN proposals (multi-scale windows kept by the proposal network)."""

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
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line


def _parse_lengths(ctx, param, value):
    if value is None:
        return None
    try:
        out = tuple(int(x) for x in value.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise click.BadParameter(f"expected positive frame counts like 16,32,64, got {value!r}")
    return out


@click.command("propose")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--weights", type=click.Path(), default=None,
              help="Proposal-network checkpoint (`vidseg train scnn --stage proposal`).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 (one input) or folder (<video_id>.proposals.h5 per input).")
@click.option("--method", type=click.Choice(["scnn", "sliding"]), default="scnn", show_default=True,
              help="scnn: windows scored by the proposal network; sliding: every window, score 1, "
                   "no network (S-CNN Table 3, 'w/o proposal').")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Keep windows with P(action) >= this (S-CNN 3.3).")
@click.option("--lengths", callback=_parse_lengths, default=None, metavar="N,N,...",
              help="Window lengths in frames [default: the checkpoint's; S-CNN 3.1: "
                   "16,32,64,128,256,512].")
@click.option("--overlap", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Window overlap [default: the checkpoint's; S-CNN 3.1: 0.75].")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Windows per network batch.")
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision inference.")
@overwrite_option
@quiet_option
@json_option
def propose(inputs, weights, out, method, threshold, lengths, overlap, batch_size, device, amp,
            overwrite, quiet, json_out):
    """Generate S-CNN proposals for frames files INPUTS: sliding windows of 16, 32, 64, 128,
    256 and 512 frames with 75% overlap (S-CNN 3.1), each as 16 frames sampled uniformly,
    scored by the proposal network in batches; windows with P(action) >= --threshold are
    written as a proposals file (segments in frames, scores). A video shorter than the
    shortest window gives an empty proposals file and a warning.
    """
    from vidseg_cli.api.propose import STAGE, Options, load
    from vidseg_cli.errors import InputError

    if method == "scnn" and not weights:
        fail(STAGE, "--method scnn needs --weights (or use --method sliding)")
    if method == "sliding" and weights:
        fail(STAGE, "--weights is for --method scnn; sliding windows need no network")
    opts = Options(weights=weights, method=method, threshold=threshold, lengths=lengths,
                   overlap=overlap, batch_size=batch_size, device=device, amp=amp,
                   command=command_line())
    inputs = [str(p) for p in expand_inputs(STAGE, list(inputs), ["frames"], quiet)]
    outputs = resolve_outputs(STAGE, inputs, out, "proposals")
    try:
        proposer = load(opts)
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))

    res = run_batch(STAGE, jobs_for(inputs, outputs, "frames", "proposals"),
                    lambda job: proposer.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    finish(STAGE, res, len(inputs), json_out, {"method": method, "results": res.results}, quiet=quiet)
