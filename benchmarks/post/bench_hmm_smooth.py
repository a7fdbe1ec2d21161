"""hmm-smooth: throughput against the memory-bandwidth bound, for an HMM fitted by hmm-fit
and for a dense random HMM, and peak memory with and without spatial tiling, on
3DFCN-sized scores (T=40 frames, C=22 J-HMDB classes, 240x320 pixels, float32), all
measured side by side in this run.

Throughput: the belief must read every score once and write every belief once, 2 x
T*C*H*W*4 bytes; the bound is that traffic at the bandwidth of a large numpy copy
measured here. Target: at least 30% of the bound for the fitted HMM: it is what users
run (hmm-smooth loads hmm-fit's output), and its transition matrix is a row floor plus
a few entries per observed transition, which the kernel uses exactly (stages/
hmm/kernel.py: A = B + u 1^T). It is made here by hmm-fit's own code
(`TransitionCounts` + `estimate()`, smoothing 1.0) from J-HMDB-like label volumes:
background plus one of the 21 actions per video, an actor mask that appears, moves and
leaves. The dense random HMM (every transition distinct) is the worst case, reported
beside it without a target: its recursions cost 2 x 2*C^2 = 1,936 flops per pixel and
frame against 2 x 4C = 176 bytes, so a 2-core CPU is compute-bound there well before
memory-bound; its ratio says by how much.

Peak memory: `vidseg hmm-smooth` on the same scores in a file, in a fresh process each,
with one tile (--max-memory 8G) and with 64 MiB tiles; the resident-set high-water mark
(Linux VmHWM, reset after the imports and after loading the compiled kernel, ~60 MiB
whatever the input) above the resident set before the run. The output is streamed into
its file tile by tile, so the tiled run holds neither the whole input nor the whole
output: the detail gives its peak over one output's size.

The figures depend on what else runs on the machine; the detail records the load
averages (/proc/loadavg) before and after.
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


def _dense_hmm(rng):
    """Every transition distinct: the kernel visits all C^2 entries (worst case)."""
    counts = rng.integers(0, 50, (C, C)).astype(np.float64) + np.eye(C) * 5000
    trans = counts / counts.sum(1, keepdims=True)
    prior = np.full(C, 0.5 / (C - 1))
    prior[0] = 0.5
    return prior, trans


def jhmdb_like_labels(rng, videos: int = 6) -> list[np.ndarray]:
    """(T, H, W) uint8 label volumes as J-HMDB's puppet masks give: background and one
    action per video (distinct actions), an elliptic actor that appears after a few
    frames, moves, and may leave before the end."""
    yy, xx = np.mgrid[:H, :W]
    out = []
    for action in rng.choice(np.arange(1, C), size=videos, replace=False):
        lab = np.zeros((T, H, W), np.uint8)  # T x H x W
        t0, t1 = int(rng.integers(0, 10)), int(rng.integers(30, T + 1))
        cy, cx = rng.uniform(80, 160), rng.uniform(60, 260)
        vy, vx = rng.normal(0, 1), rng.normal(0, 3)
        ry, rx = rng.uniform(40, 80), rng.uniform(20, 45)
        for t in range(t0, t1):
            lab[t][((yy - cy - vy * t) / ry) ** 2 + ((xx - cx - vx * t) / rx) ** 2 < 1] = action
        out.append(lab)
    return out


def _fitted_hmm(rng):
    """The HMM hmm-fit writes for jhmdb_like_labels (its counting and estimate code)."""
    from vidseg_cli.stages.hmm.fit import TransitionCounts

    counts = TransitionCounts(C)
    for lab in jhmdb_like_labels(rng):
        counts.add(lab)
    return counts.estimate(1.0)


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


def _loadavg() -> str:
    """The 1-, 5- and 15-minute load averages: what else ran on the machine."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


_PEAK = r"""
import json, sys
import torch, h5py, numpy  # the imports every run pays, outside the figure
from vidseg_cli.cli.main import cli
from vidseg_cli.stages.hmm.smooth import smooth

# Load the kernel's compiled code (~60 MiB of LLVM and numba, the same for any input)
# before the mark, so that the figure is what the data costs.
smooth(numpy.full((2, 2, 2, 2), 0.5, numpy.float32), numpy.full(2, 0.5),
           numpy.full((2, 2), 0.5))

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


def _throughput(probs, prior, trans, out, threads, repeats, bound, must, extra=None):
    from vidseg_cli.stages.hmm import kernel as hmm_kernel
    from vidseg_cli.stages.hmm.smooth import smooth

    smooth(probs, prior, trans, out=out, threads=threads)  # warm up (compiles once)
    t = _best(lambda: smooth(probs, prior, trans, out=out, threads=threads), repeats)
    t_one = _best(lambda: smooth(probs, prior, trans, out=out, threads=1), max(1, repeats // 2))
    nnz = int(hmm_kernel.sparse_split(trans)[0].size)
    px_frames = T * H * W
    detail = {
        "smooth_s": round(t, 4), "smooth_1_thread_s": round(t_one, 4), "threads": threads,
        "bound_s": round(bound, 4), "achieved_GBps": round(must / t / 1e9, 2),
        "nonzeros_used": nnz, "of_dense": C * C,
        # Flops the kernel does in its products (B's nonzeros and the row-floor term,
        # forward and backward), and what a dense product would have done.
        "GFLOPs": round(2 * 2 * (nnz + C) * px_frames / t / 1e9, 2),
        "dense_equivalent_GFLOPs": round(2 * 2 * C * C * px_frames / t / 1e9, 1),
    }
    detail.update(extra or {})
    return t, detail


def run(quick: bool) -> list[dict]:
    import torch

    from vidseg_cli import store
    from vidseg_cli.stages.hmm.smooth import smooth

    load_before = _loadavg()
    rng = np.random.default_rng(0)
    probs = _scores(rng)
    dense_prior, dense_trans = _dense_hmm(rng)
    fit_prior, fit_trans = _fitted_hmm(np.random.default_rng(1))
    out = np.empty_like(probs)
    threads = os.cpu_count() or 1
    repeats = 3 if quick else 7

    bw = _copy_bandwidth(probs.nbytes, repeats + 1)
    must = 2 * probs.nbytes  # read the scores once, write the belief once
    bound = must / bw
    t_fit, d_fit = _throughput(probs, fit_prior, fit_trans, out, threads, repeats,
                               bound, must)
    # The torch path (backend="torch", what CPU runs used before the kernel) for scale.
    smooth(probs, dense_prior, dense_trans, out=out, threads=threads, backend="torch")
    t_torch = _best(lambda: smooth(probs, dense_prior, dense_trans, out=out,
                                       threads=threads, backend="torch"), max(1, repeats // 3))
    t_dense, d_dense = _throughput(probs, dense_prior, dense_trans, out, threads,
                                   repeats, bound, must,
                                   {"torch_backend_s": round(t_torch, 4),
                                    "torch_backend_ratio": round(bound / t_torch, 3)})
    common = {"bytes_touched": must, "copy_GBps": round(bw / 1e9, 2), "torch": torch.__version__,
              "loadavg_before": load_before, "loadavg_after": _loadavg()}
    figures = [
        {
            "name": "hmm-smooth throughput / memory-bandwidth bound, HMM fitted by hmm-fit "
                    "(T=40, C=22, 240x320)",
            "ratio": bound / t_fit,
            "target": ">= 0.30",
            "ok": bound / t_fit >= 0.30,
            "detail": {**d_fit, **common},
        },
        {
            "name": "hmm-smooth throughput / memory-bandwidth bound, dense HMM (worst case)",
            "ratio": bound / t_dense,
            "target": "none (compute-bound: 2*2*C^2 flops per pixel-frame)",
            "ok": None,
            "detail": {**d_dense, **common},
        },
    ]

    # Peak memory through the CLI, one tile vs 64 MiB tiles, each in a fresh process.
    with tempfile.TemporaryDirectory(prefix="vidseg-bench-hmm-") as tmp:
        d = Path(tmp)
        store.write_scores(d / "v.scores.h5", probs, class_names=[f"c{i}" for i in range(C)],
                           video_id="v", num_frames=T, fps=30.0)
        store.write_hmm(d / "hmm.h5", fit_prior, fit_trans, [f"c{i}" for i in range(C)])
        probs = out = None  # free them before the child processes run
        common_args = [str(d / "v.scores.h5"), "--hmm", str(d / "hmm.h5"), "--device", "cpu",
                       "-q", "--overwrite"]
        whole = _peak_kib(["hmm-smooth", *common_args, "-o", str(d / "a.h5"),
                           "--max-memory", "8G"])
        tiled = _peak_kib(["hmm-smooth", *common_args, "-o", str(d / "b.h5"),
                           "--max-memory", "64M"])
    output_mib = T * C * H * W * 4 / 2**20
    figures.append({
        "name": "hmm-smooth peak memory, 64 MiB tiles / one tile",
        "ratio": tiled / whole,
        "target": "<= 0.75",
        "ok": tiled / whole <= 0.75,
        "detail": {
            "one_tile_MiB": round(whole / 1024, 1), "tiled_MiB": round(tiled / 1024, 1),
            "scores_MiB": round(output_mib, 1),
            "tiled_over_output": round(tiled / 1024 / output_mib, 3),
            "note": "the output is streamed into its file tile by tile (store.ScoresWriter); "
                    "one tile holds the whole input tile and its belief, 64 MiB tiles hold "
                    "one tile of each",
        },
    })
    return figures
