"""Errors shared across layers. Each one's `str()` is the single line a user sees."""

from __future__ import annotations

import os


class InputError(Exception):
    """A bad input: `str()` is `<file>: <problem>`."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
