"""A stage's command line taken apart as its click parser reads it: the positional words
(INPUTS, which each array task replaces by its slice) and the options, kept verbatim so a
task runs exactly what the user typed."""

from __future__ import annotations

import click
from click.core import ParameterSource


def _option_table(cmd: click.Command) -> dict[str, click.Option]:
    table = {}
    for p in cmd.params:
        if isinstance(p, click.Option):
            for o in (*p.opts, *p.secondary_opts):
                table[o] = p
    return table


def _takes_value(p: click.Option) -> bool:
    return not (p.is_flag or p.count)


def split_args(cmd: click.Command, args: list[str]) -> tuple[list[str], list[str]]:
    """(positional words, option words) of `args` for `cmd`: `--opt value`, `--opt=value`,
    `-jN`, bundled short flags and `--` handled as click's parser does."""
    table = _option_table(cmd)
    positional: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            positional.extend(args[i:])
            break
        if tok.startswith("--"):
            name = tok.split("=", 1)[0]
            p = table.get(name)
            options.append(tok)
            if p is not None and _takes_value(p) and "=" not in tok:
                options.extend(args[i:i + p.nargs])
                i += p.nargs
            continue
        if tok.startswith("-") and len(tok) > 1:
            options.append(tok)
            for j, ch in enumerate(tok[1:], start=1):  # -qj4: flags, then one with a value
                p = table.get("-" + ch)
                if p is not None and _takes_value(p):
                    if j == len(tok) - 1:  # its value is the next word
                        options.extend(args[i:i + p.nargs])
                        i += p.nargs
                    break
            continue
        positional.append(tok)
    return positional, options


def given(ctx: click.Context, name: str) -> bool:
    """Whether the parameter `name` was typed (not a default)."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT)


def has_param(cmd: click.Command, name: str) -> bool:
    return any(p.name == name for p in cmd.params)
