"""`vidseg inspect`: what a vidseg HDF5 file holds, for people and (with --json) scripts."""

from __future__ import annotations

import json
import sys

import click

from vidseg_cli.cli.common import err_line


@click.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (a list) instead of tables.")
@click.option("--no-stats", is_flag=True, help="Skip the statistics (faster on big files).")
def inspect(files, as_json, no_stats):
    """Describe FILES: kind, schema, provenance, datasets (shape, dtype, chunks,
    compression), class names, and a few statistics computed on a bounded sample.

    Every file is validated against the contract; a file that breaks it is reported in
    one line and the others are still shown (exit 1, or 2 for a single file).
    """
    from vidseg_cli.errors import InputError
    from vidseg_cli.store.describe import describe

    reports, failed = [], 0
    for path in files:
        try:
            reports.append(describe(path, stats=not no_stats))
        except InputError as e:
            click.echo(err_line("inspect", str(e)), err=True)
            failed += 1
    if as_json:
        click.echo(json.dumps(reports if len(files) > 1 else (reports[0] if reports else None),
                              indent=2, default=str))
    else:
        _print_tables(reports)
    if failed:
        sys.exit(2 if len(files) == 1 else 1)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, list) and len(v) > 12:
        return ", ".join(map(str, v[:12])) + f", ... ({len(v)} in all)"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


def _print_tables(reports: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for rep in reports:
        head = Table(title=f"{rep['path']}", show_header=False, title_justify="left")
        head.add_column(style="bold")
        head.add_column()
        for k, v in rep["attrs"].items():
            if k == "inputs":
                v = "; ".join(f"{i.get('path')} (uid {i.get('uid')})" for i in v) or "-"
            head.add_row(k, _fmt(v))
        for k, v in rep.get("summary", {}).items():
            head.add_row(k, _fmt(v))
        console.print(head)
        ds = Table(title_justify="left")
        for col in ("dataset", "shape", "dtype", "chunks", "compression", "stats"):
            ds.add_column(col)
        for name, d in rep["datasets"].items():
            st = d.get("stats") or {}
            stats = ", ".join(f"{k}={_fmt(v)}" for k, v in st.items())
            ds.add_row(name, str(tuple(d["shape"])), d["dtype"], str(d["chunks"]),
                       str(d["compression"]), stats)
        console.print(ds)
