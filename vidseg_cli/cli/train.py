"""`vidseg train MODEL ...`: the training commands of the stage catalogue, each imported
only when used."""

from __future__ import annotations

import click

from vidseg_cli.api.catalogue import in_group
from vidseg_cli.cli.lazy import LazyGroup

# name -> ("module:attribute", one-line help)
TRAIN_COMMANDS: dict[str, tuple[str, str]] = {
    s.argv[1]: (s.command, s.help) for s in in_group("train")
}


@click.group("train", cls=LazyGroup, commands=TRAIN_COMMANDS)
def train() -> None:
    """Train the models that the stages load. Every run writes RUN_DIR/last.ckpt (resumable
    with --resume), best.ckpt, log.jsonl and config.json (the fully resolved settings)."""
