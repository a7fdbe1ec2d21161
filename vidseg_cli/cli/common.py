"""What every stage's command shares: output naming, skip/overwrite, the batch runner with
DESIGN.md's exit codes, one-line errors, progress bars and JSON summaries.

Exit codes: 0 all done (warnings allowed); 1 some inputs failed, the rest done; 2 bad
usage or a single bad input. Errors read `vidseg STAGE: error: <file>: <problem>`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from vidseg_cli.errors import InputError
from vidseg_cli.progress import progress_bar

__all__ = ["InputError", "expand_inputs", "fail", "finish", "parse_bytes", "progress_bar",
           "resolve_device", "resolve_outputs", "run_batch", "warn"]


def err_line(stage: str, message: str) -> str:
    return f"vidseg {stage}: error: {message}"


def fail(stage: str, message: str, code: int = 2) -> None:
    """Print one error line and exit."""
    click.echo(err_line(stage, message), err=True)
    sys.exit(code)


def warn(stage: str, message: str) -> None:
    click.echo(f"vidseg {stage}: warning: {message}", err=True)


def notice(stage: str, message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(f"vidseg {stage}: {message}", err=True)


def _known_errors() -> tuple[type[BaseException], ...]:
    return (InputError,)  # StoreError included: it is a kind of InputError


def resolve_outputs(
    stage: str, inputs: Sequence[str], out: str, kind: str, ids: Sequence[str] | None = None
) -> list[Path]:
    """Map inputs to output paths: OUT is a file for one input (unless it is a folder or has
    no .h5 suffix) and a folder for many; checks that the folder is writable."""
    from vidseg_cli.store import output_name, video_id_of

    ids = list(ids) if ids is not None else [video_id_of(i) for i in inputs]
    o = Path(out)
    single_file = len(inputs) == 1 and not o.is_dir() and o.suffix in (".h5", ".hdf5")
    folder = o.parent if single_file else o
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(stage, f"{folder}: cannot create output folder ({e.strerror})")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(stage, f"{folder}: output folder is not writable")
    if single_file:
        return [o]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        fail(stage, f"several inputs share the video id(s) {', '.join(dup)}; outputs would collide")
    return [folder / output_name(v, kind) for v in ids]


@dataclass
class Job:
    """One unit of a batch: the files it reads and the files it writes, by kind."""

    inputs: dict[str, Any]  # kind -> path (the first is the one named in messages)
    outputs: dict[str, Path]  # kind -> path

    @property
    def source(self) -> str:
        if not self.inputs:
            return ""
        first = next(iter(self.inputs.values()))
        # A set stage's paths (hmm-fit's ground truth) are named together.
        return ", ".join(map(str, first)) if isinstance(first, (list, tuple)) else str(first)


def jobs_for(inputs: Sequence[Any], outputs: Sequence[Path], in_kind: str, out_kind: str) -> list[Job]:
    """One job per input of a one-input, one-output stage."""
    return [Job({in_kind: i}, {out_kind: Path(o)}) for i, o in zip(inputs, outputs)]


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)


def _run_one(fn: Callable[[Job], Any], job: Job) -> tuple[str, Any]:
    """Run one job, turning known errors into ('error', line)."""
    try:
        value = fn(job)
        if hasattr(value, "to_json"):  # an api Summary: its warning lines are shown, not in --json
            lines = getattr(value, "warnings", None)
            return "ok", (value.to_json(), list(lines) if isinstance(lines, list) else [])
        return "ok", (value, [])
    except _known_errors() as e:
        return "error", str(e)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # unexpected: still one line, with the traceback on request
        if os.environ.get("VIDSEG_DEBUG"):
            traceback.print_exc()
        return "error", f"{job.source}: {e.__class__.__name__}: {e}"


def remove_stale(stage: str, outputs: Sequence[Path], quiet: bool) -> None:
    """Remove, saying so, the temporary files of `outputs` whose writer is gone."""
    from vidseg_cli.core.fs import remove_stale_temps

    for o in outputs:
        for tmp, pid in remove_stale_temps(o):
            notice(stage, f"{tmp}: removed, the temporary file of an interrupted run "
                          f"(pid {pid}, no longer running)", quiet)


def run_batch(
    stage: str,
    work: Sequence[Job],
    fn: Callable[[Job], Any],
    *,
    overwrite: bool,
    jobs: int = 1,
    quiet: bool = False,
    describe: str = "videos",
) -> BatchResult:
    """Run `fn(job)` over `work`, skipping a job whose outputs all exist unless overwrite
    (a job with some of its outputs missing is redone whole).

    Each failure prints its one line as it happens; the rest of the batch goes on.
    """
    from vidseg_cli.api.base import REPLACED_INPUT, replaced_input
    from vidseg_cli.core.fs import remove_stale_temps

    res = BatchResult()
    todo = []
    for job in work:
        clash = replaced_input(job.inputs, job.outputs)
        if clash:
            line = f"{clash}: {REPLACED_INPUT}"
            click.echo(err_line(stage, line), err=True)
            res.failed.append((job.source, line))
            continue
        outs = list(job.outputs.values())
        present = [o for o in outs if o.exists()]
        if present and len(present) == len(outs) and not overwrite:
            notice(stage, f"{outs[0]}: exists, skipped (use --overwrite to redo)", quiet)
            res.skipped.append(str(outs[0]))
        else:
            if present and not overwrite:
                missing = ", ".join(str(o) for o in outs if not o.exists())
                notice(stage, f"{present[0]}: exists but {missing} does not: redone", quiet)
            remove_stale(stage, outs, quiet)
            todo.append(job)

    def record(job: Job, status: str, value: Any) -> None:
        if status == "ok":
            value, lines = value
            for line in lines:
                warn(stage, line)
            res.done.append(str(next(iter(job.outputs.values()))))
            res.results.append(value)
        else:
            click.echo(err_line(stage, value), err=True)
            res.failed.append((job.source, value))

    with progress_bar(len(todo), f"{stage} ({describe})", quiet) as advance:
        if jobs > 1 and len(todo) > 1:
            from vidseg_cli.core import signals, workers

            try:
                with contextlib.closing(workers.ordered(
                        _run_one, ((fn, job) for job in todo), min(jobs, len(todo)))) as outs:
                    for job, (status, value) in zip(todo, outs):
                        record(job, status, value)
                        advance(1)
            except BaseException:
                # The workers are gone by now; what they were writing is a stale temp file.
                for job in todo:
                    for o in job.outputs.values():
                        remove_stale_temps(o)
                signals.check()  # a worker ended by the same signal is not the error
                raise
        else:
            for job in todo:
                status, value = _run_one(fn, job)
                record(job, status, value)
                advance(1)
    return res


def finish(stage: str, res: BatchResult, n_inputs: int, json_out: str | None = None,
           summary: dict | None = None, quiet: bool = False) -> None:
    """Print the batch summary, write --json, and exit with DESIGN.md's code."""
    payload = {
        "stage": stage,
        "done": res.done,
        "skipped": res.skipped,
        "failed": [{"input": i, "error": e} for i, e in res.failed],
        **(summary or {}),
    }
    if json_out:
        write_json(stage, json_out, payload)
    if res.failed:
        if n_inputs > 1:
            click.echo(
                f"vidseg {stage}: {len(res.failed)} of {n_inputs} inputs failed "
                f"({len(res.done)} done, {len(res.skipped)} skipped):",
                err=True,
            )
            for inp, _ in res.failed:
                click.echo(f"  {inp}", err=True)
            # 1 means "the rest were done": with nothing done or skipped, the batch failed.
            sys.exit(1 if res.done or res.skipped else 2)
        sys.exit(2)
    notice(stage, f"{len(res.done)} written, {len(res.skipped)} skipped", quiet)


def write_json(stage: str, dest: str, payload: Any) -> None:
    """The one writer of `--json` summaries: '-' is stdout; a file is written whole or not
    at all (a temporary file renamed into place); a file that cannot be written is one
    error line (exit 2)."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if dest == "-":
        click.echo(text, nl=False)
        return
    from vidseg_cli.core.fs import write_text

    try:
        write_text(dest, text)
    except InputError as e:  # OutputError: a full disk, a folder that cannot be written
        fail(stage, str(e))
    except OSError as e:
        fail(stage, f"{dest}: cannot write ({e.strerror or e})")


# Options every stage shares, as decorators.
def overwrite_option(f: Callable) -> Callable:
    return click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")(f)


def jobs_option(f: Callable) -> Callable:
    return click.option(
        "--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
        help="Parallel workers (joblib) over inputs.",
    )(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or notices.")(f)


def json_option(f: Callable) -> Callable:
    """--json FILE, refused (exit 2, before any work) when FILE is one of the command's
    path arguments: an input it would overwrite, or an output it would clobber."""

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        dest = kwargs.get("json_out")
        if dest not in (None, "-"):
            clash = _path_param_equal_to(dest, kwargs)
            if clash is not None:
                ctx = click.get_current_context()
                stage = (ctx.command_path.split() + [ctx.info_name])[1]
                fail(stage, f"{dest}: --json would overwrite {clash}, which this command "
                            "reads or writes; choose another file")
        return f(*args, **kwargs)

    return click.option(
        "--json", "json_out", metavar="FILE", default=None,
        help="Write a machine-readable summary to FILE ('-' for stdout); never one of the "
             "command's inputs or outputs.",
    )(guarded)


def _path_param_equal_to(dest: str, kwargs: dict[str, Any]) -> str | None:
    """The value of a path parameter of the running command that names `dest`."""
    from vidseg_cli.api.base import same_file

    ctx = click.get_current_context()
    names = {p.name for p in ctx.command.params
             if isinstance(p.type, click.Path) and p.name != "json_out"}
    for name in names:
        value = kwargs.get(name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and same_file(v, dest):
                return str(v)
    return None


def device_option(f: Callable | None = None, *, help: str = "Where the computation runs.") -> Callable:
    """--device, worded alike everywhere: `@device_option`, or `device_option(help=...)`."""

    def deco(g: Callable) -> Callable:
        return click.option("--device", default="auto", show_default=True,
                            metavar="auto|cpu|cuda[:i]", help=help)(g)

    return deco(f) if f is not None else deco


def resolve_device(stage: str, device: str):
    """--device to a torch.device; an unavailable device is a usage error (exit 2)."""
    from vidseg_cli.runtime import resolve_device as _resolve

    try:
        return _resolve(device)
    except ValueError as e:
        fail(stage, str(e))


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)


def parse_bytes(ctx, param, value):
    """click callback: '512M', '2G', '1.5GiB', '1000000' -> bytes (K/M/G/T = powers of 1024)."""
    if value is None:
        return None
    m = _SIZE.fullmatch(str(value))
    if not m:
        raise click.BadParameter(f"expected a size such as 512M, 2G or 1073741824, got {value!r}")
    n = float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper())
    if n < 1:
        raise click.BadParameter(f"must be at least 1 byte, got {value!r}")
    return int(n)


def expand_inputs(stage: str, paths: Sequence[str], kinds: Sequence[str], quiet: bool = False) -> list[Path]:
    """Files as given; folders expanded to the vidseg files of `kinds` inside them."""
    from vidseg_cli import store

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)
            continue
        found = sorted(f for f in p.iterdir() if f.suffix in (".h5", ".hdf5") and f.is_file())
        keep = []
        for f in found:
            try:
                if store.peek_kind(f) in kinds:
                    keep.append(f)
            except store.StoreError:
                # Unreadable, yet named as one of `kinds` (<id>.scores.h5): an input that is
                # broken, not a file of another kind; the stage reports it as a failed input.
                if any(f.name.endswith(f".{k}.h5") for k in kinds):
                    keep.append(f)
        if not keep:
            fail(stage, f"{p}: no {' or '.join(kinds)} files in this folder")
        if len(keep) < len(found):
            notice(stage, f"{p}: {len(found) - len(keep)} file(s) of other kinds ignored", quiet)
        files.extend(keep)
    return files
