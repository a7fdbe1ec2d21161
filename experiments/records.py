"""Recorded runs name their work folder OUT, not the folder they ran in.

The learning checks' drivers take a work folder (`experiments/.../*.sh OUT`); a record
written with the /tmp path of one machine reads as if that path mattered. `portable`
writes the folder as the driver's argument name instead, so a recorded command is the one
a reader types after choosing their own OUT.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def portable(obj: Any, root: str | os.PathLike, name: str = "OUT") -> Any:
    """`obj` (JSON-like) with every string's `root` prefix written as `name`: the folder as
    given and as resolved, so a relative or symlinked OUT is caught too."""
    roots = {str(Path(root)), str(Path(root).resolve())}
    roots = sorted((r.rstrip("/") for r in roots if r not in ("", ".", "/")), key=len, reverse=True)

    def fix(x: Any) -> Any:
        if isinstance(x, str):
            for r in roots:
                x = x.replace(r + "/", name + "/")
                if x == r:
                    x = name
            return x
        if isinstance(x, dict):
            return {fix(k): fix(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [fix(v) for v in x]
        return x

    return fix(obj)
