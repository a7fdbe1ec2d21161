"""Progress bars (rich) on stderr when it is a terminal; silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int, description: str, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    from vidseg_cli.core.signals import check

    if quiet or not sys.stderr.isatty() or total <= 0:
        yield lambda n=1: check()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as prog:
        task = prog.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            check()
            prog.advance(task, n)

        yield advance
