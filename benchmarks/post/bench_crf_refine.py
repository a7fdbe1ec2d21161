"""crf-refine: frames per second with --jobs 1 and --jobs 2, side by side in this run.

The CLI's per-video path (stages.crf through api.crf_refine's runner: lazy reading,
validation, upsampling, DenseCRF2D with §4.2's settings, writing the labels) on real
J-HMDB frames (../shared/refdata; generated frames without it), 320x240, with 22-class
scores at spatial_stride 8 as 3DFCN-8s gives. The joblib workers are started before the
clock (a video of hundreds of frames amortises their start). Target: at least 1.7x
with 2 jobs on 2 cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES = (Path(__file__).resolve().parents[2].parent / "shared" / "refdata" / "jhmdb" / "frames"
          / "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2")
C, STRIDE, H, W = 22, 8, 240, 320


def _images(n: int, rng) -> tuple[np.ndarray, str]:
    import cv2

    pngs = sorted(FRAMES.glob("*.png")) if FRAMES.is_dir() else []
    if len(pngs) >= n:
        return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in pngs[:n]]), "J-HMDB"
    img = rng.integers(0, 255, (n, H // 8, W // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(i, (W, H), interpolation=cv2.INTER_CUBIC) for i in img]), "generated"


def run(quick: bool) -> list[dict]:
    from joblib import Parallel, delayed

    from vidseg_cli import store
    from vidseg_cli.api.crf_refine import Options, load
    from vidseg_cli.stages.crf import CRFParams

    n = 8 if quick else 24
    rng = np.random.default_rng(0)
    images, source = _images(n, rng)
    logits = rng.normal(0, 2, (n, C, H // STRIDE, W // STRIDE)).astype(np.float32)
    logits[:, 0] += 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    names = ["background"] + [f"c{i}" for i in range(1, C)]
    Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(4))  # start the workers
    times = {}
    with tempfile.TemporaryDirectory(prefix="vidseg-bench-crf-") as tmp:
        d = Path(tmp)
        with store.FramesWriter(d / "v.frames.h5", height=H, width=W, video_id="v", fps=30.0) as fw:
            for i, im in enumerate(images):
                fw.append(im, i / 30.0)
        store.write_scores(d / "v.scores.h5", probs, class_names=names, video_id="v",
                           num_frames=n, fps=30.0, attrs={"spatial_stride": STRIDE})
        # Warm up (imports, first DenseCRF2D) in this process and in the workers, then
        # alternate 1 and 2 jobs and keep each one's best.
        for jobs in (1, 2):
            load(Options(params=CRFParams(iterations=1), jobs=jobs)).run(
                {"scores": d / "v.scores.h5", "frames": d / "v.frames.h5"}, {"labels": d / "warm.h5"})
            (d / "warm.h5").unlink()
        for _ in range(1 if quick else 2):
            for jobs in (1, 2):
                refiner = load(Options(params=CRFParams(), jobs=jobs))
                t0 = time.perf_counter()
                refiner.run(
                    {"scores": d / "v.scores.h5", "frames": d / "v.frames.h5"}, {"labels": d / f"l{jobs}.h5"})
                times[jobs] = min(times.get(jobs, float("inf")), time.perf_counter() - t0)
                (d / f"l{jobs}.h5").rename(d / f"keep{jobs}.h5")
        same = np.array_equal(store.read_labels(d / "keep1.h5")["labels"],
                              store.read_labels(d / "keep2.h5")["labels"])
    speedup = times[1] / times[2]
    return [{
        "name": f"crf-refine frames/s, --jobs 2 / --jobs 1 ({n} frames, C={C}, 320x240)",
        "ratio": speedup,
        "target": ">= 1.7",
        "ok": speedup >= 1.7 and same,
        "detail": {
            "fps_jobs1": round(n / times[1], 3), "fps_jobs2": round(n / times[2], 3),
            "cpus": os.cpu_count(), "frames": source, "same_labels": same,
        },
    }]
