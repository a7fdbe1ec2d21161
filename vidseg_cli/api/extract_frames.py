"""extract-frames: a video (or frame folder) to a frames file, streaming, with decode and
encode overlapped.

OpenCV releases the GIL while it decodes, converts, resizes and encodes, so a reader
thread keeps the decoder busy while the codec threads (store/frames.py) encode JPEGs and
this thread writes them: the cost is close to the larger of decode and encode rather
than their sum (benchmarks/video/bench_frames_file.py). Frames stay BGR, as decoded, on
their way to the JPEG encoder, which takes BGR.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidseg_cli.api.base import Ports, Summary, one
from vidseg_cli.errors import InputError
from vidseg_cli.store import FramesWriter, video_id_of
from vidseg_cli.store.frames import DEFAULT_JPEG_QUALITY
from vidseg_cli.video.decode import DEFAULT_FOLDER_FPS, iter_frames, output_size, probe

_END = object()


STAGE = "extract-frames"


@dataclass
class Options:
    fps: float | None = None
    size: tuple[int, int] | None = None
    short_side: int | None = None
    start: float = 0.0
    end: float | None = None
    folder_fps: float = DEFAULT_FOLDER_FPS
    video_id: str | None = None
    command: str | None = None
    codec: str = "jpeg"
    quality: int = DEFAULT_JPEG_QUALITY  # JPEG quality, 1..100
    on_warning: Callable[[str], None] | None = None  # each warning line as it arises


def _producer(gen, q: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in gen:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        q.put(_END)
    except BaseException as e:  # handed to the consumer, which re-raises it
        q.put(e)


@dataclass
class FramesSummary(Summary):
    input: str
    output: str
    video_id: str
    num_frames: int
    fps: float
    size: list[int]
    uid: str


def load(opts: Options) -> ExtractFrames:
    return ExtractFrames(opts)


class ExtractFrames:
    """Decodes videos into frames files with one set of options."""

    def __init__(self, opts: Options):
        self.opts = opts

    def run(self, inputs: Ports, outputs: Ports) -> FramesSummary:
        """Decode inputs["video"] into the frames file outputs["frames"]."""
        return _extract(one(inputs, "video", STAGE), one(outputs, "frames", STAGE), self.opts)


def _extract(source: Path, out: Path, opts: Options) -> FramesSummary:
    info = probe(source, opts.folder_fps)
    if opts.end is not None and opts.end <= opts.start:
        raise InputError(source, f"--end {opts.end} is not after --start {opts.start}")
    w, h = output_size(info.width, info.height, opts.size, opts.short_side)
    if opts.fps and info.fps and opts.fps > 4 * info.fps and opts.on_warning is not None:
        opts.on_warning(f"{source}: --fps {opts.fps:g} writes {opts.fps / info.fps:.1f} frames per "
                        f"source frame ({info.fps:g} fps): each one repeated")
    vid = opts.video_id or video_id_of(source)
    attrs = {
        "source": str(Path(source).resolve()),
        "source_kind": info.kind,
        "source_fps": info.fps,
        "source_size": [info.width, info.height],
        "start": float(opts.start),
    }
    if opts.end is not None:
        attrs["end"] = float(opts.end)
    bgr = opts.codec == "jpeg"
    # JPEG: the codec threads encode while FFmpeg decodes; FFmpeg's default of a thread per
    # core would oversubscribe the CPUs (on 2 cores, 1.5x the bare decode time against 1.3x).
    threads = max(1, (os.cpu_count() or 1) // 2) if bgr else None
    gen = iter_frames(info, fps=opts.fps, start=opts.start, end=opts.end, size=(w, h), bgr=bgr,
                      decode_threads=threads)
    q: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()
    th = threading.Thread(target=_producer, args=(gen, q, stop), daemon=True)
    writer = None
    # Everything from here on is inside the try, so that an interrupt landing anywhere
    # (even inside Thread.start) stops the reader: a decoder thread still running when
    # the interpreter exits is killed inside OpenCV, which aborts the process.
    try:
        writer = FramesWriter(
            out,
            height=h,
            width=w,
            video_id=vid,
            fps=opts.fps or info.fps,
            inputs=[{"path": attrs["source"], "uid": None}],
            attrs=attrs,
            command=opts.command,
            codec=opts.codec,
            quality=opts.quality,
        )
        th.start()
        while True:
            item = q.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            t, frame = item
            writer.append(frame, t, bgr=bgr)
        if writer.count == 0:
            what = "in the requested --start/--end range" if (opts.start or opts.end) else ""
            raise InputError(source, f"no frames decoded {what}".strip())
        uid = writer.close()
    except BaseException as e:
        stop.set()
        if writer is not None:
            writer.abort(e)
        raise
    finally:
        stop.set()
        if th.is_alive():
            th.join(timeout=5)
        if not th.is_alive():
            # Release the decoder now: left to the interpreter's shutdown, OpenCV's
            # capture is torn down after its own threads and the process aborts.
            gen.close()
    return FramesSummary(input=str(source), output=str(out), video_id=vid,
                         num_frames=writer.count, fps=opts.fps or info.fps, size=[w, h], uid=uid)
