"""`vidseg export`: detections files to ActivityNet-style result JSON or THUMOS14 text."""

from __future__ import annotations

import os
from pathlib import Path

import click

from vidseg_cli.cli.common import fail, json_option, notice, quiet_option, warn, write_json

STAGE = "export"


@click.command(STAGE)
@click.argument("detections", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output file: results JSON, or THUMOS14 detection text for a .txt name. "
                   "Export writes one file, so a folder here is an error.")
@click.option("--format", "fmt", type=click.Choice(["activitynet", "thumos14"]), default=None,
              help="activitynet: {\"results\": {video: [{\"segment\", \"label\", \"score\"}]}}; "
                   "thumos14: lines 'video start end class_index score' (class_index = the "
                   "index in the file's class_names). Default: from the output's suffix.")
@click.option("--time-base", type=click.Choice(["fps", "timestamps"]), default="fps",
              show_default=True,
              help="Seconds of frame segments: frame / fps, or the timestamps of the frames "
                   "file found through the file's provenance.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@quiet_option
@json_option
def export(detections, out, fmt, time_base, overwrite, quiet, json_out):
    """Write DETECTIONS (our detections .h5 files, or folders of them) as one
    ActivityNet-style result JSON - the format `vidseg evaluate` and the ActivityNet
    scorer read - or as THUMOS14 detection text for TH14evalDet.

    Segments [start, end) in frames become seconds (frame / fps); labels become the
    file's class names; background (class 0) detections are left out, with a warning.
    """
    from vidseg_cli.api import export as api
    from vidseg_cli.errors import InputError

    o = Path(out)
    if o.is_dir() or str(out).endswith(("/", os.sep)):
        fail(STAGE, f"{out}: is a folder, and export writes one file; name it, e.g. "
                    f"{o / 'results.json'} (or a .txt name for THUMOS14 text)")
    if o.exists() and not overwrite:
        notice(STAGE, f"{o}: exists, skipped (use --overwrite to redo)", quiet)
        return
    try:
        summary = api.load(api.Options(fmt=fmt, time_base=time_base)).run(
            {"detections": list(detections)}, {"results": o})
    except InputError as e:
        fail(STAGE, str(e))
    for line in summary.warning_lines:
        warn(STAGE, line)
    notice(STAGE, f"{o}: {summary.detections} detections of {summary.videos} videos written "
                  f"({summary.format})", quiet)
    if json_out:
        write_json(STAGE, json_out, summary.to_json())
