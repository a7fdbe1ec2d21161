"""The `vidseg` entry point: a click group whose subcommands are imported only when run.

Keeping heavy imports (torch, cv2, h5py) out of this module and out of the registry makes
`vidseg --help` and `vidseg STAGE --help` answer in a fraction of a second.
"""

from __future__ import annotations

import importlib

import click

from vidseg_cli import __version__

# name -> ("module", "attribute", one-line help). The help is repeated here so that the
# group's --help lists every command without importing any of them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "extract-frames": (
        "vidseg_cli.cli.extract_frames",
        "extract_frames",
        "Decode videos or frame folders into frames files.",
    ),
    "inspect": ("vidseg_cli.cli.inspect", "inspect", "Describe vidseg HDF5 files."),
    "extract-features": (
        "vidseg_cli.cli.extract_features",
        "extract_features",
        "One 2D/3D CNN feature vector per snippet (FSN 3.2), RGB or optical flow.",
    ),
    "segment-3d": (
        "vidseg_cli.cli.segment3d",
        "segment_3d",
        "Per-pixel class posteriors with 3DFCN (32s, 8s) or Sep3D.",
    ),
    "propose": (
        "vidseg_cli.cli.propose",
        "propose",
        "S-CNN multi-scale windows scored by the proposal network.",
    ),
    "localize": (
        "vidseg_cli.cli.localize",
        "localize",
        "Temporal action detections with FSN, WFSN or S-CNN.",
    ),
    "train": ("vidseg_cli.cli.train", "train", "Train the models that the stages load."),
    "evaluate": (
        "vidseg_cli.cli.evaluate",
        "evaluate",
        "Score detections, proposals, frame scores or masks against ground truth.",
    ),
    "export": (
        "vidseg_cli.cli.export",
        "export",
        "Write detections as ActivityNet-style result JSON.",
    ),
    "hmm-fit": (
        "vidseg_cli.cli.hmm",
        "hmm_fit",
        "Count an HMM (prior, transitions) from ground-truth labels.",
    ),
    "hmm-smooth": (
        "vidseg_cli.cli.hmm",
        "hmm_smooth",
        "Forward-backward smoothing of per-pixel or per-frame scores (3DFCN 3.5).",
    ),
    "crf-refine": (
        "vidseg_cli.cli.crf_refine",
        "crf_refine",
        "Dense CRF refinement of per-pixel scores on the frames (3DFCN 3.6).",
    ),
    "check-dataset": (
        "vidseg_cli.cli.check_dataset",
        "check_dataset",
        "Verify a dataset's layout, annotations, videos and masks before any work.",
    ),
    "synth": (
        "vidseg_cli.cli.synth",
        "synth",
        "Generate a labelled synthetic set of untrimmed action videos.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr, _ = COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidseg")
def cli() -> None:
    """vidseg: composable stages for video action segmentation and temporal action
    localization. Stages exchange HDF5 files; run `vidseg STAGE --help` for each.

    \b
    video -> extract-frames -> frames.h5 -> segment-3d / propose / extract-features ...
    every output -> evaluate
    """


def main() -> None:
    cli(prog_name="vidseg")


if __name__ == "__main__":
    main()
