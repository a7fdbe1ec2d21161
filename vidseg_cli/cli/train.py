"""`vidseg train MODEL ...`: the training commands, each imported only when used."""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute, one-line help)
TRAIN_COMMANDS: dict[str, tuple[str, str, str]] = {
    "segment": ("vidseg_cli.cli.train_segment", "train_segment",
                "3DFCN (32s, 8s) or Sep3D per-pixel segmentation."),
    "sep3d-head": ("vidseg_cli.cli.train_segment_head", "train_sep3d_head",
                   "Sep3D's action head on a frozen Sep3D, or jointly (--joint)."),
    "backbone": ("vidseg_cli.cli.train_fsn", "train_backbone",
                 "A 2D CNN frame classifier (TSN-style) for extract-features."),
    "fsn": ("vidseg_cli.cli.train_fsn", "train_fsn",
            "The FSN temporal CNN on features (or end to end from frames)."),
    "wfsn": ("vidseg_cli.cli.train_fsn", "train_wfsn",
             "The weakly supervised FSN from video-level labels."),
    "scnn": ("vidseg_cli.cli.train_scnn", "train_scnn",
             "S-CNN proposal, classification or localization network."),
}


class _LazyTrain(click.Group):
    def list_commands(self, ctx):
        return sorted(TRAIN_COMMANDS)

    def get_command(self, ctx, name):
        if name not in TRAIN_COMMANDS:
            return None
        module, attr, _ = TRAIN_COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(n, TRAIN_COMMANDS[n][2]) for n in sorted(TRAIN_COMMANDS)])


@click.group("train", cls=_LazyTrain)
def train() -> None:
    """Train the models that the stages load. Every run writes RUN_DIR/last.ckpt (resumable
    with --resume), best.ckpt, log.jsonl and config.json (the fully resolved settings)."""
