"""What every `vidseg train` command shares: the run-folder options, the guard that checks
and locks a run folder before any data loads, and the error and --json handling of a
training run.

Under torchrun (several processes, train/distributed.py) the guard joins the process
group first; rank 0 alone checks, creates and locks the run folder, and tells the other
ranks the outcome, which they follow; only rank 0 prints progress and writes --json."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vidseg_cli.cli.common import (
    InputError,
    device_option,
    fail,
    json_option,
    quiet_option,
    remove_stale,
    write_json,
)


def training_run_options(run_dir_param: str = "run_dir", max_steps: bool = True,
                         run_files: str = "last.ckpt, best.ckpt, log.jsonl, config.json") -> Callable:
    """The options of every `vidseg train` command, worded alike: the run folder, --resume,
    --seed, --max-steps (unless the command counts iterations its own way), --device,
    --amp, then --quiet and --json."""

    def deco(f: Callable) -> Callable:
        from vidseg_cli.cli.run_config import ConfigOption, record_settings

        f = _guard_run_folder(record_settings(f, run_dir_param), run_dir_param)
        opts = [
            click.option("-o", "--output", run_dir_param, required=True, type=click.Path(),
                         help=f"Run folder: {run_files}. A folder that holds a run is refused "
                              "unless --resume or --overwrite."),
            click.option("--resume", is_flag=True,
                         help="Continue exactly from the run folder's last.ckpt (same settings)."),
            click.option("--overwrite", is_flag=True,
                         help="Start again in a run folder that holds a run, replacing it."),
            click.option("--seed", type=int, default=0, show_default=True,
                         help="Seeds initialisation and data order."),
        ]
        if max_steps:
            opts.append(click.option("--max-steps", type=click.IntRange(1), default=None,
                                     help="Stop after this many steps in all (smoke runs)."))
        opts += [
            click.option("--config", cls=ConfigOption, run_dir_param=run_dir_param,
                         type=click.Path(), default=None, metavar="RUN/config.json",
                         help="Start from the settings a run recorded in its config.json; "
                              "options given here override them, an unknown key is an error."),
            device_option(help="Where training runs."),
            click.option("--amp", is_flag=True,
                         help="Mixed precision (float16 on CUDA, bfloat16 on CPU)."),
            click.option("--tensorboard", "tensorboard_dir", type=click.Path(), default=None,
                         metavar="DIR",
                         help="Also write the losses, learning rate and validation metrics as "
                              "TensorBoard curves to DIR (needs the tensorboard package)."),
            click.option("--dist-timeout", type=click.FloatRange(0, min_open=True), default=1800.0,
                         show_default=True,
                         help="Under torchrun: seconds a process waits for the others (at a "
                              "barrier or a gradient exchange) before the run fails."),
        ]
        f = json_option(quiet_option(f))  # innermost: listed last in --help
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


# Files that make a folder a training run; --overwrite removes them before starting again.
RUN_FILES = ("last.ckpt", "best.ckpt", "log.jsonl", "config.json", "summary.json",
             "backbone.ckpt", "fsn.ckpt")
LOCK = ".vidseg-run.lock"


def _guard_run_folder(f: Callable, run_dir_param: str) -> Callable:
    """Before any data loads: the run folder can be created and written; one that holds a
    run needs --resume (continue) or --overwrite (start again); and it is locked while
    this run writes it, so two trainings never interleave in one folder."""

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        run_dir = Path(kwargs[run_dir_param])
        resume, overwrite = kwargs.get("resume"), kwargs.pop("overwrite", False)
        timeout = kwargs.pop("dist_timeout", None)
        curves = kwargs.pop("tensorboard_dir", None)
        if resume and overwrite:
            fail("train", "--resume and --overwrite are exclusive: continue the run, or replace it")
        from vidseg_cli.train import tensorboard

        if curves is not None and not tensorboard.available():
            fail("train", f"--tensorboard {curves}: the tensorboard package is not installed; "
                          f"{tensorboard.INSTALL}")
        tensorboard.configure(curves)  # the engine writes the curves on rank 0
        try:
            if "WORLD_SIZE" in os.environ:  # launched by torchrun: one of several processes
                return _several_ranks(f, args, kwargs, run_dir, overwrite, timeout)
            created = not run_dir.exists()
            held = _check_folder(run_dir, resume, overwrite)
            try:
                with _run_lock(run_dir):
                    _clear(run_dir, held, overwrite, kwargs.get("quiet", False))
                    return f(*args, **kwargs)
            finally:
                if created:  # a run that stopped before writing anything leaves no folder
                    with contextlib.suppress(OSError):
                        run_dir.rmdir()
        finally:
            tensorboard.close()

    return guarded


def _check_folder(run_dir: Path, resume: bool, overwrite: bool) -> list[str]:
    """Create the run folder and check it can take this run; the run files it holds."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail("train", f"{run_dir}: cannot create the run folder ({e.strerror or e})")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        fail("train", f"{run_dir}: the run folder is not writable")
    held = [n for n in RUN_FILES if (run_dir / n).exists()]
    if held and not resume and not overwrite:
        fail("train", f"{run_dir}: holds a run ({', '.join(held)}); use --resume to continue "
                      "it or --overwrite to start again")
    return held


def _clear(run_dir: Path, held: list[str], overwrite: bool, quiet: bool) -> None:
    remove_stale("train", [run_dir / n for n in RUN_FILES], quiet)
    if overwrite:
        for n in held:
            (run_dir / n).unlink()


def _several_ranks(f: Callable, args: tuple, kwargs: dict, run_dir: Path, overwrite: bool,
                   timeout: float | None) -> Any:
    """The guard under torchrun: rank 0 checks, creates and locks the folder while the
    others wait for its verdict (a failure there ends every rank with exit 2; rank 0
    alone prints it); then every rank trains, rank 0 alone printing and writing --json."""
    from vidseg_cli.train import distributed

    try:
        d = distributed.setup(kwargs.get("device") or "auto",
                              timeout if timeout is not None else distributed.DEFAULT_TIMEOUT_S)
    except ValueError as e:
        fail("train", str(e))
    try:
        if not d.main:
            kwargs.update(quiet=True, json_out=None)
            if distributed.broadcast_object(None) is not None:
                raise SystemExit(2)
            with _rank0_says_errors():
                out = f(*args, **kwargs)
            distributed.barrier()  # see below
            return out
        created = not run_dir.exists()
        try:
            held = _check_folder(run_dir, kwargs.get("resume"), overwrite)
            lock = _run_lock(run_dir)
            lock.__enter__()
        except SystemExit:
            distributed.broadcast_object("failed")  # the others exit too; the line is printed
            raise
        try:
            _clear(run_dir, held, overwrite, kwargs.get("quiet", False))
            distributed.broadcast_object(None)
            out = f(*args, **kwargs)
            # no rank leaves the group while another still uses it (a gloo peer that closes
            # its sockets early can abort the other at exit); only after success, as after
            # a failure on one rank the others may never come to this barrier
            distributed.barrier()
            return out
        finally:
            lock.__exit__(None, None, None)
            if created:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
    finally:
        distributed.teardown()


@contextlib.contextmanager
def _rank0_says_errors():
    """On ranks other than 0: their `vidseg ...: error:` and warning lines are dropped, as
    every rank meets the same data and settings and rank 0 prints the same line; anything
    else (a traceback) still reaches stderr."""
    import sys

    class Filter:
        def __init__(self, out):
            self.out = out

        def write(self, text: str) -> int:
            if not (text.startswith("vidseg ") and (": error: " in text or ": warning: " in text)):
                self.out.write(text)
            return len(text)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.out, name)

    real = sys.stderr
    sys.stderr = Filter(real)
    try:
        yield
    finally:
        sys.stderr = real


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    """An exclusive lock file naming its holder (pid@host); a lock whose holder on this
    host has died is taken over."""
    from vidseg_cli.core.fs import HOST, alive

    lock = run_dir / LOCK
    me = f"{os.getpid()}@{HOST}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = lock.read_text().strip() if lock.exists() else ""
            pid, _, host = holder.partition("@")
            if host == HOST and pid.isdigit() and not alive(int(pid)):
                lock.unlink(missing_ok=True)  # its writer is gone: take the folder over
                continue
            fail("train", f"{run_dir}: another training ({holder or 'unknown'}) is writing this "
                          f"run folder (lock {lock})")
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(me + "\n")
            break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def run_training(stage: str, call: Callable[[], dict], *, data: str, run_dir: str,
                 json_out: str | None, value_errors_name_data: bool = False) -> dict:
    """Run a `vidseg train` recipe: its known errors become one line (the dataset named for
    model-input problems, and for ValueErrors when `value_errors_name_data`; the run folder
    for a diverged loss, exit 1), and the summary, with the command line, goes to --json."""
    from vidseg_cli.cmdline import command_line
    from vidseg_cli.models.common import ModelInputError

    try:
        summary = call()
    except InputError as e:  # StoreError included
        fail(stage, str(e))
    except ModelInputError as e:
        fail(stage, f"{data}: {e}")
    except ValueError as e:
        fail(stage, f"{data}: {e}" if value_errors_name_data else str(e))
    except FloatingPointError as e:
        fail(stage, f"{run_dir}: {e}", code=1)
    summary["command"] = command_line()
    if json_out:
        write_json(stage, json_out, summary)
    return summary
