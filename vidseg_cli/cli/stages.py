"""`vidseg stages`: the stage catalogue as a table, or as JSON for scripts."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import json_option, write_json


def _port(p) -> str:
    """`frames`, `checkpoint (--weights)`, `frames (--frames, by video_id)`, `[...]` when
    optional, `{...}` conditions after it."""
    where = [] if p.via in ("INPUTS", "-o") else [p.via]
    if p.paired:
        where.append("by video_id")
    text = "|".join(p.kinds) + (f" ({', '.join(where)})" if where else "")
    if p.when:
        text += f" if {p.when}"
    return f"[{text}]" if p.optional else text


@click.command("stages")
@json_option
def stages(json_out: str | None) -> None:
    """List every command that processes data: the kinds of file it reads (inputs matched
    to the main ones by video_id say so), the kinds it writes, whether it runs per video or
    over a whole set, and whether a GPU speeds it up. [optional] ports are in brackets.

    Kinds are the vidseg HDF5 kinds (`vidseg inspect` describes them) and outside formats
    (video, ground-truth, dataset, checkpoint, run, results, metrics); `--json` lists both.
    """
    from vidseg_cli.api.catalogue import STAGES, catalogue_json

    if json_out:
        write_json("stages", json_out, catalogue_json())
        if json_out == "-":
            return
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("stage", "scope", "gpu", "reads", "writes", show_lines=True)
    for name in STAGES.names():
        s = STAGES.get(name)
        table.add_row(s.name, s.scope, "yes" if s.gpu else "no",
                      escape("\n".join(_port(p) for p in s.reads) or "-"),
                      escape("\n".join(_port(p) for p in s.writes)))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
