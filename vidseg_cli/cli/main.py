"""The `vidseg` entry point: a lazy click group over the stage catalogue and the tools.

The data-processing commands come from the stage catalogue (api/catalogue.py); the tools
that look at files or at the catalogue itself are listed here.
"""

from __future__ import annotations

import click

from vidseg_cli import __version__
from vidseg_cli.api.catalogue import top_level
from vidseg_cli.cli.lazy import TopGroup

# Commands that process no data: they describe files, datasets or the catalogue.
TOOLS: dict[str, tuple[str, str]] = {
    "inspect": ("vidseg_cli.cli.inspect:inspect", "Describe vidseg HDF5 files."),
    "check-dataset": ("vidseg_cli.cli.check_dataset:check_dataset",
                      "Verify a dataset's videos, annotations and masks before any work."),
    "stages": ("vidseg_cli.cli.stages:stages",
               "The stage catalogue: what each command reads and writes."),
    "train": ("vidseg_cli.cli.train:train", "Train the models that the stages load."),
    "submit": ("vidseg_cli.cli.submit:submit",
               "Run a stage as SLURM jobs (an array per video), chained; --local here."),
    "jobs": ("vidseg_cli.cli.jobs:jobs", "Status, retry and cancel of a submission folder."),
}

# name -> ("module:attribute", one-line help), for every command of the group.
COMMANDS: dict[str, tuple[str, str]] = {
    **{s.name: (s.command, s.help) for s in top_level()},
    **TOOLS,
}


@click.group(cls=TopGroup, commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidseg")
def cli() -> None:
    """vidseg: composable stages for video action segmentation and temporal action
    localization. Stages exchange HDF5 files; run `vidseg STAGE --help` for each, and
    `vidseg stages` for what each reads and writes.

    \b
    video -> extract-frames -> frames.h5 -> segment-3d / propose / extract-features ...
    every output -> evaluate
    """


def main() -> None:
    """The console script: SIGTERM and SIGHUP stop a run as Ctrl-C does (core/signals.py),
    so a scheduler's time limit leaves no temporary file behind."""
    from vidseg_cli.core import signals

    signals.install()
    cli(prog_name="vidseg")


if __name__ == "__main__":
    main()
