"""One click group for every level of `vidseg`: subcommands are imported only when run.

Keeping heavy imports (torch, cv2, h5py) out of the help path makes `vidseg --help` and
`vidseg STAGE --help` answer in a fraction of a second; the one-line help of each command
therefore comes from the table, not from importing the command.
"""

from __future__ import annotations

import importlib
import math
import sys

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
            return finite_floats(getattr(importlib.import_module(module), attr))
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, self.lazy_commands[n][1]) for n in sorted(self.lazy_commands)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class TopGroup(LazyGroup):
    """The `vidseg` group: every way a run ends is one line and DESIGN.md's exit code.

    A usage error (a bad option value, a missing argument) is `vidseg STAGE: error: ...`,
    exit 2, rather than click's usage block; Ctrl-C exits 130 and a signal raised as
    core.signals.Stopped exits 128 + its number, each after the writers have removed their
    temporary files (the exceptions unwind through them)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        from vidseg_cli.core.signals import Stopped

        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            words = e.ctx.command_path.split()[1:2] if e.ctx else []
            click.echo(f"vidseg{''.join(' ' + w for w in words)}: error: {e.format_message()}",
                       err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):
            click.echo("vidseg: interrupted (SIGINT); outputs in progress were removed", err=True)
            sys.exit(130)
        except Stopped as e:
            click.echo(f"vidseg: stopped by {e}; outputs in progress were removed", err=True)
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


_FINITE: dict[type, type] = {}


def _finite_type(cls: type) -> type:
    """A subclass of a float parameter type whose conversion refuses nan and inf (which
    pass click's range checks, since every comparison with nan is false)."""
    if cls not in _FINITE:
        def convert(self, value, param, ctx):
            v = cls.convert(self, value, param, ctx)
            if isinstance(v, float) and not math.isfinite(v):
                self.fail(f"{value!r} is not a finite number", param, ctx)
            return v

        _FINITE[cls] = type(f"Finite{cls.__name__}", (cls,), {"convert": convert})
    return _FINITE[cls]


def finite_floats(cmd: click.Command) -> click.Command:
    """Make every float option of `cmd` (and of its subcommands) refuse nan and inf: a
    non-finite frame rate, time or threshold is never meaningful, and `--fps inf` would
    write frames for ever."""
    for p in cmd.params:
        if isinstance(p.type, click.types.FloatParamType) and type(p.type) not in _FINITE.values():
            p.type.__class__ = _finite_type(type(p.type))
    return cmd
