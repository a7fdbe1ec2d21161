"""`vidseg train ... --config RUN/config.json`: a run again from its record.

Every training command records in its run folder's config.json, beside the engine's
resolved settings, the command-line settings it was given: a `command` section,

    "command": {"name": "train segment", "vidseg_version": "...",
                "params": {"model": "sep3d", "data": "/abs/synth", "epochs": "2", ...}}

keyed by option name without its dashes (an argument by its name), each value as it was
typed (paths made absolute, so the record holds from any folder). The run folder, --resume,
--overwrite, --quiet and --json are the invocation's, not the run's, and are left out.
`--config FILE` reads that section back and gives each setting to the command as if typed,
before anything else is parsed, so the option's own type, range and callback check it;
what the command line gives wins. A key the command does not have, a value of the wrong
type and a record of another command are errors (one line, exit 2), never ignored.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

SECTION = "command"
_RAW = "vidseg.raw_params"  # ctx.meta: the parsed command line, the file's settings merged in
_UNSET = getattr(click.core, "UNSET", None)  # click >= 8.2: what the parser leaves for no value
_INVOCATION = ("resume", "overwrite", "quiet", "json_out", "config")


def _given(value: Any) -> bool:
    return value is not _UNSET and value is not None and value != ()


def _key(p: click.Parameter) -> str:
    """The name a setting has in the record: the long option without dashes, else the name."""
    longs = [o for o in p.opts if o.startswith("--")]
    return max(longs, key=len)[2:] if longs else str(p.name)


def _recorded(cmd: click.Command, run_dir_param: str) -> dict[str, click.Parameter]:
    """key -> parameter, for the parameters a run records."""
    skip = {*_INVOCATION, run_dir_param}
    return {_key(p): p for p in cmd.params if p.name not in skip and p.expose_value}


class ConfigOption(click.Option):
    """--config FILE: eager, so the file's settings join the parsed command line before any
    other option is processed (a required option may come from the file)."""

    def __init__(self, *args: Any, run_dir_param: str = "run_dir", **kwargs: Any):
        super().__init__(*args, is_eager=True, **kwargs)
        self.run_dir_param = run_dir_param

    def handle_parse_result(self, ctx: click.Context, opts: Any, args: list[str]):
        path = opts.get(self.name, _UNSET)
        if _given(path):
            _merge(ctx, opts, str(path), self.run_dir_param)
        ctx.meta[_RAW] = dict(opts)
        return super().handle_parse_result(ctx, opts, args)


def _command_name(ctx: click.Context) -> str:
    return " ".join(ctx.command_path.split()[1:])


def _merge(ctx: click.Context, opts: dict[str, Any], path: str, run_dir_param: str) -> None:
    """The settings of the record at `path`, under those of the command line."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise click.UsageError(f"{path}: cannot read ({e.__class__.__name__}: {e})", ctx) from None
    except json.JSONDecodeError as e:
        raise click.UsageError(f"{path}: not JSON ({e})", ctx) from None
    sec = doc.get(SECTION) if isinstance(doc, dict) else None
    if not isinstance(sec, dict) or not isinstance(sec.get("params"), dict):
        raise click.UsageError(f"{path}: no '{SECTION}' section with 'params' (the settings "
                               "a training records when it ends)", ctx)
    name = _command_name(ctx)
    if sec.get("name", name) != name:
        raise click.UsageError(f"{path}: the settings of `vidseg {sec['name']}`, not of "
                               f"`vidseg {name}`", ctx)
    known = _recorded(ctx.command, run_dir_param)
    for key, value in sec["params"].items():
        p = known.get(key)
        if p is None:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise click.UsageError(f"{path}: '{key}' is not a setting of `vidseg {name}`{hint}", ctx)
        if (p.multiple or p.nargs != 1) and not isinstance(value, list):
            raise click.UsageError(f"{path}: '{key}' takes a list, got {value!r}", ctx)
        try:
            p.type_cast_value(ctx, value)
        except click.BadParameter as e:
            raise click.UsageError(f"{path}: '{key}': {e.message}", ctx) from None
        if not _given(opts.get(p.name, _UNSET)):
            opts[p.name] = tuple(value) if isinstance(value, list) else value


def _as_recorded(p: click.Parameter, value: Any) -> Any:
    """A value as the record keeps it: JSON data, paths absolute."""
    if isinstance(value, (tuple, list)):
        return [_as_recorded(p, v) for v in value]
    if isinstance(p.type, click.Path) and isinstance(value, str) and value != "-":
        return os.path.abspath(value)
    return value


def record_settings(f: Callable, run_dir_param: str) -> Callable:
    """Wrap a training command: when it ends (done, failed or stopped), the run folder's
    config.json gets the `command` section of this invocation; a resumed run keeps the
    section of the run it continues."""

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        kwargs.pop("config", None)  # merged while parsing (ConfigOption)
        cfg = Path(kwargs[run_dir_param]) / "config.json"
        before = _section(cfg) if kwargs.get("resume") else None
        try:
            return f(*args, **kwargs)
        finally:
            raw = ctx.meta.get(_RAW) or {}
            known = _recorded(ctx.command, run_dir_param)
            params = {k: _as_recorded(p, raw[p.name]) for k, p in known.items()
                      if _given(raw.get(p.name, _UNSET))}
            # under torchrun rank 0 alone writes the run's files (train/distributed.py)
            if cfg.is_file() and os.environ.get("RANK", "0") == "0":
                _write_section(cfg, before or {"name": _command_name(ctx),
                                               "vidseg_version": _version(), "params": params})

    return wrapped


def _section(cfg: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(cfg.read_text())
        if isinstance(doc, dict) and isinstance(doc.get(SECTION), dict):
            return doc[SECTION]
    return None


def _write_section(cfg: Path, section: dict) -> None:
    from vidseg_cli.core.fs import write_text

    try:
        doc = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return  # not the engine's record: left as it is
    if isinstance(doc, dict):
        doc[SECTION] = section
        write_text(cfg, json.dumps(doc, indent=2) + "\n")


def _version() -> str:
    from vidseg_cli import __version__

    return __version__
