"""Writing videos: RGB frames to an mp4 file, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from vidseg_cli.core.fs import atomic_path, check_room
from vidseg_cli.errors import InputError


def write_mp4(path: str | os.PathLike, frames: Iterator[np.ndarray], width: int, height: int,
              fps: float) -> int:
    """Encode RGB frames (mp4v, deterministic) under a temporary name, check that OpenCV
    decodes the same count and size, then rename into place; return the frame count."""
    final = Path(path)
    # The temporary name keeps ".mp4": OpenCV picks the container from the extension.
    with atomic_path(final, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not writer.isOpened():
            raise InputError(final, "OpenCV cannot open an mp4v video writer")
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
            raise InputError(final, f"wrote {n} frames of {width}x{height}, but it decodes to "
                                    f"{got} frames of {size[0]}x{size[1]}")
    return n
