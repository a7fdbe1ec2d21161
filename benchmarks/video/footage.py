"""What the video benchmarks share: the looped benchmark videos, the bare OpenCV decode,
commands run as a newcomer runs them (this checkout, no venv activated), the peak memory
of a child process, and PSNR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIKES = ROOT / "sample_data" / "videos" / "bikes.mp4"  # 250 frames, 640x272, h264, 25 fps
BIKES_FRAMES = 250


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def looped(folder: Path, loops: int) -> Path:
    """bikes.mp4 played `loops` times (`ffmpeg -stream_loop N -c copy`: the h264 stream
    copied, so every loop decodes to the same frames as the original)."""
    out = folder / f"bikes_x{loops}.mp4"
    if not out.exists():
        subprocess.run([ffmpeg() or "ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1),
                        "-i", str(BIKES), "-c", "copy", str(out)], check=True)
    return out


def env() -> dict[str, str]:
    """This checkout's code for child processes, whatever shell or venv runs the benchmark."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def vidseg(*args: object) -> list[str]:
    """The argv of a vidseg command, run by this interpreter (no `vidseg` on PATH needed)."""
    return [sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)]


def run_cmd(argv: list[str]) -> None:
    res = subprocess.run(argv, env=env(), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {res.returncode}: {res.stderr.strip()[-400:]}")


# Runs a module (-m) or code (-c) as python would, then writes the process's high-water
# mark of resident memory (VmHWM: this program's own; a child's ru_maxrss also counts the
# parent's resident set at fork) to the file named first.
_PEAK = r"""
import runpy, sys
out, how, what, *args = sys.argv[1:]
try:
    if how == "-m":
        sys.argv = [what, *args]
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        exec(compile(what, "<benchmark>", "exec"), {"__name__": "__main__"})
finally:
    hwm = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0]
    open(out, "w").write(hwm)
"""


def peak_rss_mb(how: str, what: str, *args: object) -> float:
    """Peak resident memory, MB, of `python -m what args` (how "-m") or `python -c what
    args` (how "-c"), measured inside that process."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as out:
        argv = [sys.executable, "-c", _PEAK, out.name, how, what, *map(str, args)]
        res = subprocess.run(argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        code = res.returncode
        if code != 0:
            raise RuntimeError(f"{how} {what[:40]}... exited {code}: {res.stderr.strip()[-400:]}")
        return int(out.read()) / 1024  # kB


def opencv_frames(video: Path) -> Iterator[np.ndarray]:
    """BGR frames of a video, as OpenCV's FFmpeg backend decodes them."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield img
    finally:
        cap.release()


def opencv_decode(video: Path) -> int:
    """The bare decode loop: every frame decoded, nothing kept; the frame count."""
    return sum(1 for _ in opencv_frames(video))


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, the functions run in turn `repeats` times, so that
    a change of load on a shared machine falls on all of them alike."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


class SquaredError:
    """Running sum of squared differences of uint8 images, for PSNR over a whole video."""

    def __init__(self) -> None:
        self.sse, self.n = 0.0, 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        d = a.astype(np.int32) - b.astype(np.int32)
        self.sse += float(np.square(d, dtype=np.int64).sum())
        self.n += d.size

    def psnr(self) -> float:
        return float("inf") if self.sse == 0 else float(10 * np.log10(255.0**2 * self.n / self.sse))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
