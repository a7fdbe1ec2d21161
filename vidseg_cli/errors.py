"""Errors shared across layers. Each one's `str()` is the single line a user sees."""

from __future__ import annotations

import os


class InputError(Exception):
    """A bad input: `str()` is `<file>: <problem>`."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputError(InputError):
    """An output that cannot be written (a full disk, a read-only folder): `str()` is
    `<file>: <problem>`, and a batch counts it as that input's failure."""


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a text file (UTF-8), or an InputError naming it when it cannot be read
    or decoded (a binary file given for a list, a missing file)."""
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read ({e.__class__.__name__}: {e})") from None
