"""Writing a file so that it exists whole or not at all: every file vidseg writes (HDF5,
checkpoints, videos, JSON, text) goes through `atomic_path`.

The content goes to a temporary file `.vidseg-tmp-<name>.pid<pid>@<host>.<random><suffix>`
in the final file's folder (a rename is atomic only within one file system), which is fsynced, given
the mode a plain `open()` would give it (mkstemp makes 0600, and outputs are shared like
any other file), and renamed over the final name; the folder is then fsynced so that the
rename itself survives a crash. Any exception, an interrupt included, removes the
temporary file, so no reader ever finds a half-written file under the final name. A
process killed outright (SIGKILL, a node lost) cannot clean up: the writer's pid and host
in the name let a later run tell such a leftover (its writer gone) from a file another
process is still writing (`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from vidseg_cli.core import signals
from vidseg_cli.errors import OutputError

TMP_PREFIX = ".vidseg-tmp-"
# The host as one name-safe word: dots and separators would make the name ambiguous.
HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"
_WRITER = re.compile(r"\.pid(\d+)@([A-Za-z0-9_-]+)\.")

# The process's umask, read once (it can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def file_mode() -> int:
    """The permission bits `open()` gives a new file: 0o666 less the umask."""
    return 0o666 & ~_UMASK


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path` for the caller to write (h5py, torch.save,
    an OpenCV writer); when the block ends normally, put it in place as `path`.

    `suffix` ends the temporary name, for writers that choose a format by extension
    (OpenCV's ".mp4")."""
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{final.name}.pid{os.getpid()}@{HOST}.",
                                   suffix=suffix, dir=folder)
    except OSError as e:
        raise OutputError(final, f"cannot create a file in {folder} ({_reason(e)})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, final)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in _NO_ROOM:
            raise OutputError(final, _reason(e)) from None
        raise
    # Not every platform or file system can fsync a folder; the file is in place anyway.
    with contextlib.suppress(OSError):
        _fsync_path(folder, directory=True)


# Write failures that say the output cannot be stored, whatever the input: one line naming
# the output (OutputError) rather than the error of whichever library was writing.
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower() if e.errno else str(e)


def check_room(path: str | os.PathLike, final: str | os.PathLike, probe: int = 2**16) -> None:
    """Raise an OutputError naming `final` when `path` cannot grow by `probe` bytes for want
    of room (a full disk, a quota, a file-size limit). For writers that drop a failed write
    without a word (OpenCV's video writer): their output then looks merely corrupt."""
    try:
        with open(path, "ab", buffering=0) as f:
            f.write(b"\0" * probe)
            os.fsync(f.fileno())
    except OSError as e:
        if e.errno in _NO_ROOM:
            raise OutputError(final, _reason(e)) from None


class SpaceGuard:
    """A file object for h5py's `fileobj` driver that never lets an exception into HDF5.

    HDF5 does not survive a failed write (closing the file or freeing a dataset after one
    crashes the process), and h5py turns an exception raised in these callbacks into a
    SystemError. So a failed write (a full disk) is recorded in `error` and the writes
    after it are dropped; the caller raises it once HDF5 has closed the file, and the
    temporary file is removed. Signals are deferred while a callback runs
    (core/signals.defer); one that lands in the instant before is recorded in
    `interrupt`, the operation done anyway, and `check()` raises it."""

    def __init__(self, path: str | os.PathLike):
        self._f = open(path, "r+b", buffering=0)  # noqa: SIM115 (closed by close())
        self.error: OSError | None = None
        self.interrupt: BaseException | None = None

    def _io(self, op: Callable[[], object], fallback: object) -> object:
        done: list[object] = []
        for _ in range(2):
            try:
                signals.defer()
                try:
                    done.append(op())
                finally:
                    signals.undefer()
                return done[0]
            except OSError as e:
                self.error = self.error or e
                return fallback
            except BaseException as e:  # noqa: BLE001 (an interrupt just outside deferral)
                self.interrupt = self.interrupt or e
                if done:  # it landed after the operation: do not repeat it
                    return done[0]
        return fallback

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)

        def op():
            rest = view
            while len(rest):
                rest = rest[self._f.write(rest):]

        if self.error is None:
            self._io(op, None)
        return size

    def read(self, n: int = -1) -> bytes:
        return self._io(lambda: self._f.read(n), b"")

    def readinto(self, buf) -> int:
        return self._io(lambda: self._f.readinto(buf), 0)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._io(lambda: self._f.seek(pos, whence), pos)

    def tell(self) -> int:
        return self._io(self._f.tell, 0)

    def truncate(self, size: int | None = None) -> int:
        return self._io(lambda: self._f.truncate(size), size or 0)

    def flush(self) -> None:
        """Writes are unbuffered: nothing to do."""

    def close(self) -> None:
        self._f.close()

    def check(self, path: str | os.PathLike) -> None:
        """Raise what was recorded: an interrupt as itself, a failed write as an
        OutputError naming `path`."""
        if self.interrupt is not None:
            raise self.interrupt
        if self.error is not None:
            raise OutputError(path, _reason(self.error))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """An open file ("w": UTF-8 text, "wb": bytes) that becomes `path` when the block
    ends normally."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding="utf-8" if mode == "w" else None) as f:
            yield f


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_with(path: str | os.PathLike, write: Callable[[Path], object], suffix: str = "") -> None:
    """Call `write(tmp)` to write a temporary file (`torch.save(obj, tmp)`), then put it in
    place as `path`."""
    with atomic_path(path, suffix) as tmp:
        write(tmp)


def alive(pid: int) -> bool:
    """Whether a process of this host with this pid is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def stale_temps(path: str | os.PathLike) -> list[tuple[Path, int]]:
    """Temporary files of `path` left by a writer on this host that is no longer running,
    with that writer's pid. Files of live writers and of other hosts (a shared folder on a
    cluster) are left alone: their writers may still be at work."""
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    found = []
    try:
        candidates = list(folder.glob(f"{glob_escape(TMP_PREFIX + final.name)}.pid*"))
    except OSError:
        return []
    for tmp in candidates:
        m = _WRITER.match(tmp.name[len(TMP_PREFIX) + len(final.name):])
        if m and m.group(2) == HOST and not alive(int(m.group(1))):
            found.append((tmp, int(m.group(1))))
    return found


def remove_stale_temps(path: str | os.PathLike) -> list[tuple[Path, int]]:
    """Remove what `stale_temps` finds; return what was removed."""
    removed = []
    for tmp, pid in stale_temps(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append((tmp, pid))
    return removed


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)
