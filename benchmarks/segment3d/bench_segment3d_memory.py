"""Peak memory of segment-3d (3DFCN-8s) at 320x240, each run in a fresh process; the peak is
how far the resident set rose above where it stood when `Segmenter.predict` (CPU) began:
the kernel's high-water mark (VmHWM) is reset just before (/proc/self/clear_refs), so what
the process held earlier (imports, the model, the frames) does not hide it.

- A 40-frame video (a J-HMDB clip's length) in one pass, against the estimate segment-3d plans its
  tiles with (`fcn_trunk_bytes_per_frame`). A 40-frame video cannot be tiled exactly: a
  3DFCN-8s class-map cell depends on 76 frames (`temporal_reach`), so the shortest exact
  tile is 80 frames and segment-3d runs such a video in one pass whatever --max-memory says.
- A 200-frame video, one pass against exact temporal tiles of about 100 frames
  (`--max-memory`), with the posteriors checked equal, written at `--out-stride 8` (as
  3DFCN-8s feeds crf-refine; at stride 1 the output array itself, T x 22 x H x W float32,
  is 1.35 GB whichever way the trunk runs). Figure: tiled peak / one-pass peak.
CPU-sized width 0.25 (quick 0.125), stated in the figures; full width holds 4-8x more.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.video.footage import env

_CHILD = r"""
import json, sys, time
import numpy as np, torch
from vidseg_cli.api.segment3d import Segment3D as Segmenter
from vidseg_cli.api.segment3d import Options
from vidseg_cli.models import MODELS
width, max_memory, t, stride = float(sys.argv[1]), (int(sys.argv[2]) or None), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
m = MODELS.build("3dfcn-8s", num_classes=22, width=width).eval()
seg = Segmenter(m, [str(i) for i in range(22)], {"mean": [127.5] * 3, "std": [64.0] * 3},
                Options(model="3dfcn-8s", weights="", max_memory=max_memory, out_stride=stride), torch.device("cpu"))
frames = np.random.default_rng(0).integers(0, 256, (t, 240, 320, 3), dtype=np.uint8)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS
base = status("VmRSS")
t0 = time.perf_counter()
p = seg.predict(frames)
dt = time.perf_counter() - t0
peak = status("VmHWM")
np.save(sys.argv[3], p[::7, :, ::2, ::2])
print(json.dumps({"peak_mb": (peak - base) / 1024, "seconds": dt, "rss_before_mb": base / 1024}))
"""


def _child(width: float, max_memory: int, out: str, t: int, stride: int = 1) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, str(width), str(max_memory), out, str(t), str(stride)],
                         capture_output=True, text=True, env=env())
    if res.returncode != 0:
        raise RuntimeError(f"segment-3d memory child exited {res.returncode}: {res.stderr.strip()[-400:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    if got["peak_mb"] <= 0:
        raise RuntimeError(f"no peak measured ({got}): is /proc/self/clear_refs honoured here?")
    return got


def run(quick: bool) -> list[dict]:
    import tempfile

    import numpy as np

    from vidseg_cli.infer.fcn_tiling import fcn_trunk_bytes_per_frame
    from vidseg_cli.models import MODELS

    width = 0.125 if quick else 0.25
    m = MODELS.build("3dfcn-8s", num_classes=22, width=width)
    per_frame = fcn_trunk_bytes_per_frame(m, 240, 320)
    t_long = 200
    with tempfile.TemporaryDirectory() as d:
        short = _child(width, 0, f"{d}/s.npy", 40)
        one = _child(width, 0, f"{d}/a.npy", t_long, 8)
        tiled = _child(width, per_frame * 100, f"{d}/b.npy", t_long, 8)
        same = float(np.abs(np.load(f"{d}/a.npy") - np.load(f"{d}/b.npy")).max())
    est = per_frame * 40 / 2**20
    ratio = tiled["peak_mb"] / one["peak_mb"]
    return [
        {"name": f"segment-3d 3DFCN-8s peak memory, 40x240x320, measured / planned, width {width}",
         "ratio": short["peak_mb"] / est, "target": "0.5 .. 2 (the plan's estimate holds)",
         "ok": 0.5 <= short["peak_mb"] / est <= 2,
         "detail": {"one_pass": short, "estimate_mb": round(est, 1), "min_exact_tile_frames": 80}},
        {"name": f"segment-3d 3DFCN-8s peak memory, tiled / one pass, {t_long}x240x320, stride 8, width {width}",
         "ratio": ratio, "target": "< 0.8", "ok": ratio < 0.8,
         "detail": {"one_pass": one, "tiled": tiled, "max_memory_bytes": per_frame * 100,
                    "max_abs_diff_of_posteriors": same}},
    ]
