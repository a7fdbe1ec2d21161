"""`vidseg report`: one HTML page over a folder of outputs."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import fail, json_option, notice, quiet_option, warn, write_json

STAGE = "report"


@click.command(STAGE)
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Report folder: index.html and the pictures it shows, beside it.")
@click.option("--gt", "gt_path", type=click.Path(), multiple=True,
              help="Ground truth: temporal segments for the timelines, masks for the outlines "
                   "(repeat for both). Default: the temporal ground truth that the folder's "
                   "evaluate records name.")
@click.option("--exclude", "exclude", type=click.Path(), multiple=True,
              help="A folder inside FOLDERS to leave out, with its subfolders (repeatable): a "
                   "dataset kept beside the outputs, whose ground-truth labels would otherwise "
                   "become overlay videos.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=None,
              help="Worker processes drawing the overlay videos (VP9 encoding takes a core "
                   "per video)  [default: one per CPU core].")
@quiet_option
@json_option
def report(folders, out, gt_path, exclude, jobs, quiet, json_out):
    """Write one self-contained HTML page over the outputs in FOLDERS (searched through
    their subfolders): what ran (each file's provenance), the metrics tables of evaluate's JSON
    records, timelines of detections, proposals and frame scores, overlay videos and stills
    of labels and scores, and the loss and validation curves of training run folders
    (log.jsonl). Nothing on the page is fetched from the network.
    """
    from vidseg_cli.errors import InputError
    from vidseg_cli.runtime import cpu_cores
    from vidseg_cli.viz.report import write_report

    try:
        result = write_report(list(folders), out, gt=list(gt_path), quiet=quiet, exclude=list(exclude),
                              on_warning=lambda line: warn(STAGE, line), jobs=jobs or cpu_cores())
    except InputError as e:
        fail(STAGE, str(e))
    notice(STAGE, f"{result.index}: {len(result.written)} files written", quiet)
    if not quiet:
        click.echo(str(result.index))
    if json_out:
        write_json(STAGE, json_out, result.to_json())
