"""Writing overlay videos that play in a web browser: VP9 in WebM, and PNG stills.

VP9 because it is royalty-free and its encoder (libvpx, BSD) may ship with MIT code, where
H.264's encoders are GPL (x264) or patent-licensed; every current browser plays it. The
encoder is the one in the FFmpeg that opencv-contrib-python-headless, already a vidseg
dependency, bundles (cv2.VideoWriter with fourcc VP90 to a .webm name): no new package.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vidseg_cli.core.fs import write_bytes
from vidseg_cli.errors import OutputError


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: FFmpeg prints a harmless "tag VP90 is not
    supported with codec id 166" as OpenCV opens a WebM writer, which a user would take for
    an error."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_webm(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode RGB frames (all of one even size) as VP9/WebM under a temporary name, check
    that it decodes to as many frames of that size, and put it in place; return the count."""
    from vidseg_cli.video.write import write_video

    final = Path(path)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise OutputError(final, "no frames to encode")
    h, w = first.shape[:2]
    rate = float(fps) if fps and fps > 0 else 25.0
    return write_video(final, _chain(first, it), w, h, rate, "VP90", ".webm", opening=_quiet_fd2)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """An RGB image as PNG, atomically."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OutputError(path, "OpenCV could not encode the PNG")
    write_bytes(path, buf.tobytes())
