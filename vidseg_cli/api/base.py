"""The one shape of a stage's API, which every `api/<stage>.py` takes:

    runner = <stage>.load(<stage>.Options(...))   # checks settings, loads weights once
    summary = runner.run(inputs, outputs)          # -> <stage>.Summary (a dataclass)

`inputs` and `outputs` map a kind (store/kinds.py's, or api/catalogue.py's outside kinds
such as "video" or "ground-truth") to a path: one path per kind for a stage that runs per
video, a list of paths for a stage that runs over a set. A runner writes each output
whole or not at all, raises InputError naming the file for a bad input, and returns a
summary that `to_json()` turns into the command's `--json` record. The command line
(cli/) only parses, calls `load` and `run`, and reports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

PathArg = str | Path
Ports = Mapping[str, "PathArg | Sequence[PathArg]"]


@dataclass
class Summary:
    """What one `run` did; subclasses name their fields. A `warnings` list of lines, where
    a stage has one, is shown by the command (cli/common.run_batch) and left out of
    `to_json()`."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Runner(Protocol):
    def run(self, inputs: Ports, outputs: Ports) -> Summary: ...


def one(ports: Ports, kind: str, stage: str) -> Path:
    """The single path of `kind` in a per-video stage's inputs or outputs."""
    try:
        value = ports[kind]
    except KeyError:
        raise TypeError(f"{stage}: no '{kind}' among {sorted(ports)}") from None
    if isinstance(value, (list, tuple)):
        raise TypeError(f"{stage}: '{kind}' takes one path, got {len(value)}")
    return Path(value)


def many(ports: Ports, kind: str) -> list[str]:
    """The paths of `kind` in a set stage's inputs, as given (a single path is a list of one)."""
    value = ports.get(kind, [])
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def same_file(a: PathArg, b: PathArg) -> bool:
    """Whether two paths name one file (an existing one, or the same resolved path)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, TypeError, ValueError):
        return False


def replaced_input(inputs: Ports, outputs: Ports) -> str | None:
    """The first input file that one of the outputs would replace, if any: every stage
    refuses to write over its own input, --overwrite or not."""
    ins = [v for v in inputs.values() if isinstance(v, (str, os.PathLike))]
    outs = [v for v in outputs.values() if isinstance(v, (str, os.PathLike))]
    for i in ins:
        if os.path.isfile(i) and any(same_file(i, o) for o in outs):
            return str(i)
    return None


REPLACED_INPUT = "the output would replace this input; choose another -o"
