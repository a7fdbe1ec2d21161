"""extract-frames versus the bare decoder, on the same real video at native size.

Baseline: the OpenCV read loop (decode + BGR frames, nothing kept). Beside it, where
ffmpeg is installed: `ffmpeg -f rawvideo` to /dev/null (decode + RGB conversion).
Target: extract-frames costs at most 1.5x the bare OpenCV decode.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT / "sample_data" / "videos" / "bikes.mp4"


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _opencv_loop() -> int:
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def run(quick: bool = False) -> list[dict]:
    from vidseg_cli.api import extract_frames as api

    runner = api.load(api.Options())

    repeats = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b.h5"

        def ours():
            out.unlink(missing_ok=True)
            runner.run({"video": VIDEO}, {"frames": out})

        _opencv_loop()  # warm the page cache and FFmpeg's first-use costs
        t_cv = _best(_opencv_loop, repeats)
        t_ours = _best(ours, repeats)
        size_mb = out.stat().st_size / 1e6
    n = _opencv_loop()
    figures = [{
        "name": "extract-frames / bare OpenCV decode (bikes.mp4, 640x272, native size)",
        "ratio": t_ours / t_cv,
        "target": "<= 1.5",
        "ok": t_ours / t_cv <= 1.5,
        "detail": {"frames": n, "opencv_s": t_cv, "extract_frames_s": t_ours,
                   "extract_fps": n / t_ours, "output_MB": size_mb},
    }]
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        cmd = [ffmpeg, "-v", "error", "-i", str(VIDEO), "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"]
        t_ff = _best(lambda: subprocess.run(cmd, check=True), repeats)
        figures.append({
            "name": "extract-frames / ffmpeg -f rawvideo to /dev/null",
            "ratio": t_ours / t_ff, "target": "(reported)", "ok": None,
            "detail": {"ffmpeg_s": t_ff},
        })
    return figures
