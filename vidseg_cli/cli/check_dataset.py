"""`vidseg check-dataset`: verify a dataset's layout before any work (datasets/layouts/)."""

from __future__ import annotations

import contextlib
import sys

import click

from vidseg_cli.cli.common import err_line, fail, json_option, notice, quiet_option, write_json

STAGE = "check-dataset"


class _Bars:
    """One progress bar at a time (rich allows one live display): a new one ends the last."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.stack = contextlib.ExitStack()

    def __call__(self, total: int, description: str):
        from vidseg_cli.progress import progress_bar

        self.stack.close()
        return self.stack.enter_context(progress_bar(total, description, self.quiet))


def _summary(report) -> list[str]:
    lay = report.layout
    parts = [f"layout {lay.kind} at {lay.path}"]
    if lay.annotations:
        parts.append("annotations: " + ", ".join(a.name for a in lay.annotations))
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    run = ", ".join(c for c in report.to_dict()["checks_run"])
    skipped = "; ".join(f"{c} ({why})" for c, why in report.to_dict()["checks_skipped"].items())
    n_err = len(report.errors)
    n_warn = len(report.problems) - n_err
    return [
        "; ".join(parts),
        f"counts: {counts or 'none'}",
        f"checks run: {run or 'none'}",
        f"checks skipped: {skipped or 'none'}",
        f"{n_err} error(s), {n_warn} warning(s)",
    ]


@click.command("check-dataset")
@click.argument("path", type=click.Path())
@click.option("--videos", "videos", type=click.Path(), default=None,
              help="Folder of the annotated videos (<video_id>.mp4 or frame folders); without "
                   "it only the annotation checks run (a synth or custom folder has its own).")
@quiet_option
@json_option
def check_dataset(path, videos, quiet, json_out):
    """Verify the dataset at PATH before any work: detect its layout (THUMOS14 annotation
    folder, ActivityNet-style JSON, `vidseg synth` set, videos with a JSON, J-HMDB, DAVIS
    2016), then check that annotations read, segments end after they start, classes are
    the layout's (the closest known name is suggested), splits are not empty, videos exist
    and open, segments lie within their videos, and masks match their frames in size and
    frame count.

    One line per problem (`error:` or `warning:`), then a summary of the checks run and
    skipped. Exit 0 when no error is found, 2 otherwise.
    """
    from vidseg_cli.datasets.layouts.detect import detect
    from vidseg_cli.datasets.layouts.verify import verify
    from vidseg_cli.errors import InputError

    try:
        layout = detect(path)
    except InputError as e:
        fail(STAGE, str(e))
    bars = _Bars(quiet)
    with bars.stack:
        report = verify(layout, videos, progress=bars)
    for p in report.problems:
        line = f"{p.file}: {p.problem}"
        click.echo(err_line(STAGE, line) if p.severity == "error"
                   else f"vidseg {STAGE}: warning: {line}", err=True)
    for line in _summary(report):
        notice(STAGE, line, quiet)
    if json_out:
        write_json(STAGE, json_out, report.to_dict())
    sys.exit(2 if report.errors else 0)
