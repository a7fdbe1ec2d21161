"""Worker processes (`--jobs N`) that die with the run that started them.

joblib's loky workers outlive a parent killed outright: they finish the task at hand
(renaming an output into place after the run is gone) and then idle for minutes. So each
worker asks the kernel for SIGTERM when its parent dies (Linux's PR_SET_PDEATHSIG; the
parent is the thread that spawned the worker, which for loky is the main thread or the
executor's manager thread, both living as long as the pool), and checks that the parent
did not die before it asked.

In a worker, SIGTERM, SIGHUP and SIGINT raise as in the parent (core/signals.py) while a
task runs, so the writer at work removes its temporary file, and the worker then exits
128 + the signal's number; between tasks it exits at once. When the parent itself is
stopped, closing `ordered`'s iterator ends the pool's workers (joblib kills them) before
the caller looks at what they left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vidseg_cli.core import signals

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_busy = False  # a task is running in this worker


def _die_with_parent(signum: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _worker_handler(raising):
    def handle(signum, frame) -> None:
        if not _busy:
            os._exit(128 + signum)
        raising(signum, frame)

    return handle


def _init(parent: int) -> None:
    """Set up a worker process (loky's initializer)."""
    signals.install()
    for s in signals.CAUGHT:
        current = signal.getsignal(s)
        if callable(current):
            signal.signal(s, _worker_handler(current))
    _die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request above: nothing will signal
        os._exit(128 + signal.SIGTERM)


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    """Run one task in a worker; a signal ends the worker once the task has cleaned up."""
    global _busy
    _busy = True
    try:
        return fn(*args)
    except KeyboardInterrupt:
        os._exit(128 + signal.SIGINT)
    except signals.Stopped as e:
        os._exit(e.exit_code)
    finally:
        _busy = False


def ordered(fn: Callable[..., Any], tasks: Iterable[tuple], jobs: int, **parallel: Any
            ) -> Iterator[Any]:
    """`fn(*args)` for each args of `tasks`, in `jobs` worker processes; results in order.

    `parallel`: further joblib.Parallel arguments (pre_dispatch, batch_size). Close the
    iterator (contextlib.closing) when the caller stops early, so that the workers end
    before the caller goes on: a generator left open is only closed when collected."""
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=jobs, return_as="generator", initializer=_init,
                   initargs=(os.getpid(),), **parallel)
    results = par(delayed(_call)(fn, args) for args in tasks)
    try:
        yield from results
    finally:
        results.close()
