"""One click group for every level of `vidseg`: subcommands are imported only when run.

Keeping heavy imports (torch, cv2, h5py) out of the help path makes `vidseg --help` and
`vidseg STAGE --help` answer in a fraction of a second; the one-line help of each command
therefore comes from the table, not from importing the command.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A group over `{name: ("module:attribute", one-line help)}`."""

    def __init__(self, *args, commands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy_commands) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands:
            module, attr = self.lazy_commands[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, self.lazy_commands[n][1]) for n in sorted(self.lazy_commands)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
