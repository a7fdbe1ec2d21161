"""Writing videos: RGB frames to a video file, atomically and checked by decoding it back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from vidseg_cli.core.fs import atomic_path, check_room
from vidseg_cli.errors import OutputError


def write_mp4(path: str | os.PathLike, frames: Iterator[np.ndarray], width: int, height: int,
              fps: float) -> int:
    """Encode RGB frames (mp4v, deterministic) under a temporary name, check that OpenCV
    decodes the same count and size, then rename into place; return the frame count."""
    return write_video(path, frames, width, height, fps, "mp4v", ".mp4")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], width: int, height: int,
                fps: float, fourcc: str, suffix: str,
                opening: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> int:
    """Encode RGB frames with OpenCV's `fourcc` writer under a temporary name ending in
    `suffix` (OpenCV picks the container from the extension), check that it decodes to as
    many frames of that size, then rename into place; return the frame count. `opening`
    wraps the writer's creation (e.g. to quiet FFmpeg's messages)."""
    final = Path(path)
    with atomic_path(final, suffix=suffix) as tmp:
        with opening():
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
        if not writer.isOpened():
            raise OutputError(final, f"this OpenCV build cannot open a {fourcc} video writer")
        n = 0
        try:
            for rgb in frames:
                writer.write(np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV wants BGR
                n += 1
        finally:
            writer.release()
        cap = cv2.VideoCapture(str(tmp))
        try:
            got = 0
            while cap.grab():
                got += 1
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        finally:
            cap.release()
        if got != n or size != (width, height):
            check_room(tmp, final)  # the encoder's failed writes, not a codec fault
            raise OutputError(final, f"wrote {n} frames of {width}x{height}, but it decodes to "
                                     f"{got} frames of {size[0]}x{size[1]}")
    return n
