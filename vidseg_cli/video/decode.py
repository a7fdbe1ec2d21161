"""Decoding videos (OpenCV's FFmpeg backend) and frame folders into a stream of RGB frames.

Everything streams: `iter_frames` yields one frame at a time, so memory is flat in video
length. Frame-rate resampling picks, for each time on the output grid, the source frame
whose display interval [t_i, t_i + 1/fps) contains it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidseg_cli.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# A folder of frames has no frame rate of its own; J-HMDB and THUMOS are 30 fps.
DEFAULT_FOLDER_FPS = 30.0


@dataclass
class SourceInfo:
    path: str
    kind: str  # "video" or "folder"
    fps: float
    width: int
    height: int
    num_frames: int  # as the container or folder says; a video may decode fewer


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: _natural_key(p.name))


def probe(path: str | os.PathLike, folder_fps: float = DEFAULT_FOLDER_FPS) -> SourceInfo:
    """Open a source just enough to know its rate, size and length; InputError if we can't."""
    import cv2

    p = Path(path)
    if not p.exists():
        raise InputError(path, "no such file or folder")
    if p.is_dir():
        files = list_frame_files(p)
        if not files:
            raise InputError(path, f"folder holds no frames ({'/'.join(IMAGE_SUFFIXES)})")
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise InputError(files[0], "cannot read image")
        h, w = first.shape[:2]
        return SourceInfo(str(p), "folder", float(folder_fps), w, h, len(files))
    if p.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise InputError(path, _diagnose_unopenable(p))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(path, f"video reports no usable frame rate ({fps})")
    if w <= 0 or h <= 0:
        raise InputError(path, f"video reports no frame size ({w}x{h})")
    return SourceInfo(str(p), "video", fps, w, h, max(n, 0))


def _diagnose_unopenable(p: Path) -> str:
    """Why FFmpeg could not open a file, in words a user can act on (MP4/MOV boxes only;
    other containers get the general message)."""
    with open(p, "rb") as f:
        head = f.read(64)
        f.seek(0)
        data = f.read(16 * 1024 * 1024)
    if head[4:8] == b"ftyp":
        if b"moov" not in data and p.stat().st_size <= len(data):
            return "truncated or incomplete MP4: its index ('moov' box) is missing; was it cut short?"
        if b"moov" in data and b"trak" not in data:
            return "the video holds zero frames (its MP4 index lists no tracks)"
        return "cannot decode this MP4 (corrupt, or a codec FFmpeg lacks)"
    if head[:4] == b"RIFF" or head[:4] == b"\x1aE\xdf\xa3":
        return "cannot decode this AVI/MKV (corrupt, truncated, or a codec FFmpeg lacks)"
    return "not a video file (FFmpeg recognises no container in it)"


def output_size(
    width: int, height: int, size: tuple[int, int] | None, short_side: int | None
) -> tuple[int, int]:
    """(W, H) after --size WxH or --short-side N (aspect kept, rounded to whole pixels)."""
    if size is not None:
        return size
    if short_side is not None:
        s = short_side / min(width, height)
        return max(1, round(width * s)), max(1, round(height * s))
    return width, height


def _open_video(path: str, threads: int | None):
    """cv2.VideoCapture of `path`; `threads` FFmpeg decoding threads (None: FFmpeg's choice,
    one per core)."""
    import cv2

    if threads is not None:
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(threads)])
        if cap.isOpened():
            return cap
        cap.release()
    return cv2.VideoCapture(path)


def _raw_frames(
    info: SourceInfo, start: float, decode_threads: int | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, time, BGR frame) of the source from `start` seconds on."""
    import cv2

    dt = 1.0 / info.fps
    if info.kind == "folder":
        files = list_frame_files(Path(info.path))
        first = int(np.ceil(start * info.fps - 1e-9)) if start > 0 else 0
        for i in range(first, len(files)):
            img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(files[i], "cannot read image")
            if img.shape[:2] != (info.height, info.width):
                raise InputError(
                    files[i],
                    f"frame size {img.shape[1]}x{img.shape[0]} differs from the first frame's "
                    f"{info.width}x{info.height}",
                )
            yield i, i * dt, img
        return
    cap = _open_video(info.path, decode_threads)
    try:
        i = 0
        # grab() without retrieve() skips the colour conversion; exact, unlike seeking.
        while start > 0 and (i + 1) * dt <= start + 1e-9:
            if not cap.grab():
                return
            i += 1
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield i, i * dt, img
            i += 1
        if info.num_frames and i < info.num_frames - 1:
            raise InputError(
                info.path,
                f"truncated or corrupt video: the container lists {info.num_frames} frames, "
                f"only {i} decode",
            )
    finally:
        cap.release()


def iter_frames(
    info: SourceInfo,
    *,
    fps: float | None = None,
    start: float = 0.0,
    end: float | None = None,
    size: tuple[int, int] | None = None,
    bgr: bool = False,
    decode_threads: int | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 (H,W,3)) frames of [start, end), resampled to `fps`;
    BGR, as OpenCV decodes them, when `bgr` (a JPEG encoder takes BGR: no conversion).
    `decode_threads`: FFmpeg's decoding threads for a video file (None: one per core)."""
    import cv2

    w, h = size if size is not None else (info.width, info.height)
    interp = cv2.INTER_AREA if w * h < info.width * info.height else cv2.INTER_LINEAR
    src_dt = 1.0 / info.fps
    next_t: float | None = None  # next time on the output grid, when resampling

    def convert(img: np.ndarray) -> np.ndarray:
        if (img.shape[1], img.shape[0]) != (w, h):
            img = cv2.resize(img, (w, h), interpolation=interp)
        return img if bgr else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    k = 0
    t_first = 0.0
    for _, t, img in _raw_frames(info, start, decode_threads):
        if t < start - 1e-9:
            continue
        if end is not None and t >= end - 1e-9:
            break
        if fps is None:
            yield t, convert(img)
            continue
        if next_t is None:
            t_first, next_t = t, t
        rgb = None
        # Emit every grid time that falls in this frame's display interval [t, t + dt).
        while next_t < t + src_dt - 1e-9 and (end is None or next_t < end - 1e-9):
            if rgb is None:
                rgb = convert(img)
            yield next_t, rgb
            k += 1
            next_t = t_first + k / fps
