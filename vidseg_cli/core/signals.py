"""Ctrl-C, SIGTERM and SIGHUP stop a run cleanly, wherever they land.

A batch scheduler stops a job with SIGTERM at its time limit or on preemption, and a
closed terminal sends SIGHUP. Python's default for both is to die at once, leaving the
temporary file of the output being written. Here each of the three raises in the main
thread (KeyboardInterrupt for SIGINT, `Stopped` for the others): both are
BaseExceptions, so they pass through the `except Exception` of a batch and through every
writer's cleanup (core/fs.atomic_path removes its temporary file), and the command exits
128 + the signal's number.

An exception raised by a signal handler is lost when it lands in a weakref callback or a
`__del__` ("Exception ignored in ..."), and the run would go on as if nothing happened.
So the handler also records the signal, and `check()`, called at the places long work
passes through often (each frame a writer appends, each step of a progress bar or of a
training run), raises it again; the lost one is not reported, since it is not lost.
"""

from __future__ import annotations

import signal
import sys

CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_pending: int | None = None  # the signal received, once one is
_deferred = 0  # > 0 while code that must not be interrupted runs (see defer())


class Stopped(BaseException):
    """The run was stopped by SIGTERM or SIGHUP."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _handler(signum, frame) -> None:
    global _pending
    _pending = signum
    if not _deferred:
        raise _exception(signum)


def defer() -> None:
    """Until the matching `undefer()`, a signal is only recorded; `check()` raises it
    afterwards. For Python code that C code calls back (h5py's file driver): an exception
    there cannot unwind through the library, which is left in a broken state. Plain
    functions rather than a context manager: they run for every block HDF5 writes."""
    global _deferred
    _deferred += 1


def undefer() -> None:
    global _deferred
    _deferred -= 1


def check() -> None:
    """Raise the signal received, if any (see the module's docstring)."""
    if _pending is not None:
        raise _exception(_pending)


def _unraisable(hook):
    def quiet(unraisable) -> None:
        if not isinstance(unraisable.exc_value, (KeyboardInterrupt, Stopped)) or _pending is None:
            hook(unraisable)

    return quiet


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as above (call from the main thread). A signal
    ignored when the process started (SIGINT in a background job) stays ignored."""
    for s in CAUGHT:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _handler)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
