"""hmm-smooth: throughput against the memory-bandwidth bound, and peak memory with and
without spatial tiling, on 3DFCN-sized scores (T=40 frames, C=22 J-HMDB classes,
240x320 pixels, float32), all measured side by side in this run.

Throughput: the belief must read every score once and write every belief once, 2 x
T*C*H*W*4 bytes; the bound is that traffic at the bandwidth of a large numpy copy
measured here. Target: at least 30% of the bound. (The recursions do 2 x 2*C^2 flops per
pixel and frame in matrix products against 2 x 4C bytes of that traffic, so on a CPU they
are compute-bound well before memory-bound: the detail gives the flop rate and the ratio
that the matrix products alone, at this machine's speed for them, would reach.)

Peak memory: `vidseg hmm-smooth` on the same scores in a file, in a fresh process each,
with one tile (--max-memory 8G) and with 64 MiB tiles; the resident-set high-water mark
(Linux VmHWM, reset after the imports) above the resident set before the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T, C, H, W = 40, 22, 240, 320


def _scores(rng):
    """Softmax scores over 22 classes, mostly background, with a moving blob."""
    logits = rng.normal(0, 1, (T, C, H, W)).astype(np.float32)  # T x C x H x W
    logits[:, 0] += 2.0
    yy, xx = np.mgrid[:H, :W]
    for t in range(T):
        blob = ((yy - 120) ** 2 + (xx - 100 - 3 * t) ** 2) < 40**2
        logits[t, 5][blob] += 4.0
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _hmm(rng):
    counts = rng.integers(0, 50, (C, C)).astype(np.float64) + np.eye(C) * 5000
    trans = counts / counts.sum(1, keepdims=True)
    prior = np.full(C, 0.5 / (C - 1))
    prior[0] = 0.5
    return prior, trans


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _copy_bandwidth(nbytes: int, repeats: int) -> float:
    """Bytes per second moved (read + write) by a large numpy copy."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)  # touch the pages first
    return 2 * a.nbytes / _best(lambda: np.copyto(b, a), repeats)


_PEAK = r"""
import json, sys
import torch, h5py, numpy  # the imports every run pays, outside the figure
from vidseg_cli.cli.main import cli
from vidseg_cli.stages import hmm

def status(key):
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the resident-set high-water mark (VmHWM) to the current RSS
base = status("VmRSS:")
try:
    cli(sys.argv[1:], prog_name="vidseg", standalone_mode=False)
finally:
    peak = status("VmHWM:")
print("PEAK", json.dumps({"base_kib": base, "peak_kib": peak}))
"""


def _peak_kib(args: list[str]) -> int:
    out = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PEAK")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"hmm-smooth failed: {out.stderr.strip()[-500:]}")
    d = json.loads(line[5:])
    return d["peak_kib"] - d["base_kib"]


def run(quick: bool) -> list[dict]:
    import torch

    from vidseg_cli import store
    from vidseg_cli.stages import hmm

    rng = np.random.default_rng(0)
    probs = _scores(rng)
    prior, trans = _hmm(rng)
    out = np.empty_like(probs)
    threads = os.cpu_count() or 1
    repeats = 2 if quick else 5

    hmm.smooth(probs, prior, trans, out=out, threads=threads)  # warm up
    t_smooth = _best(lambda: hmm.smooth(probs, prior, trans, out=out, threads=threads), repeats)
    t_one = _best(lambda: hmm.smooth(probs, prior, trans, out=out, threads=1), 1 if quick else 3)
    # The floor of the matrix products alone: 2 (C x C)(C x 4096) products per frame per
    # block, split over the threads as the blocks are.
    a, x, y = torch.rand(C, C), torch.rand(C, hmm.CPU_BLOCK), torch.empty(C, hmm.CPU_BLOCK)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t_mm = _best(lambda: [torch.mm(a, x, out=y) for _ in range(2 * T)], repeats)
    torch.set_num_threads(old_threads)
    t_gemm = t_mm * (H * W / hmm.CPU_BLOCK) / threads
    bw = _copy_bandwidth(probs.nbytes, repeats + 1)
    must = 2 * probs.nbytes  # read the scores once, write the belief once
    bound = must / bw
    flops = 2 * (2 * C * C) * T * H * W
    figures = [{
        "name": "hmm-smooth throughput / memory-bandwidth bound (T=40, C=22, 240x320)",
        "ratio": bound / t_smooth,
        "target": ">= 0.30",
        "ok": bound / t_smooth >= 0.30,
        "detail": {
            "smooth_s": round(t_smooth, 4), "smooth_1_thread_s": round(t_one, 4),
            "threads": threads, "bytes_touched": must, "copy_GBps": round(bw / 1e9, 2),
            "bound_s": round(bound, 4), "achieved_GBps": round(must / t_smooth / 1e9, 2),
            "GFLOPs": round(flops / t_smooth / 1e9, 1), "torch": torch.__version__,
            "gemm_only_s": round(t_gemm, 4), "gemm_only_ratio": round(bound / t_gemm, 3),
        },
    }]

    # Peak memory through the CLI, one tile vs 64 MiB tiles, each in a fresh process.
    with tempfile.TemporaryDirectory(prefix="vidseg-bench-hmm-") as tmp:
        d = Path(tmp)
        store.write_scores(d / "v.scores.h5", probs, class_names=[f"c{i}" for i in range(C)],
                           video_id="v", num_frames=T, fps=30.0)
        store.write_hmm(d / "hmm.h5", prior, trans, [f"c{i}" for i in range(C)])
        probs = out = None  # free them before the child processes run
        common = [str(d / "v.scores.h5"), "--hmm", str(d / "hmm.h5"), "--device", "cpu", "-q",
                  "--overwrite"]
        whole = _peak_kib(["hmm-smooth", *common, "-o", str(d / "a.h5"), "--max-memory", "8G"])
        tiled = _peak_kib(["hmm-smooth", *common, "-o", str(d / "b.h5"), "--max-memory", "64M"])
    figures.append({
        "name": "hmm-smooth peak memory, 64 MiB tiles / one tile",
        "ratio": tiled / whole,
        "target": "<= 0.75",
        "ok": tiled / whole <= 0.75,
        "detail": {
            "one_tile_MiB": round(whole / 1024, 1), "tiled_MiB": round(tiled / 1024, 1),
            "scores_MiB": round(T * C * H * W * 4 / 2**20, 1),
            "note": "both hold the whole output (the store writes whole arrays)",
        },
    })
    return figures
