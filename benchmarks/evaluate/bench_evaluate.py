"""Detection mAP on THUMOS14-sized input: the real test ground truth (213 videos, 3,358
instances, 99 Ambiguous segments), 100,000 detections (a third near ground truth, the
rest anywhere), all thresholds of each protocol; vectorized metrics vs the plain
per-class reference loops of benchmarks/evaluate/reference.py, side by side.

Target: under 2 s per protocol on 2 cores (the absolute time is printed beside it).
Without ../shared/refdata, ground truth of the same size is generated.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.evaluate.reference import activitynet_reference, thumos14_reference
from vidseg_cli.metrics.temporal import (
    ACTIVITYNET_TIOU,
    THUMOS14_TIOU,
    average_precision_activitynet,
    average_precision_thumos14,
)

REFDATA = Path(__file__).resolve().parents[2].parent / "shared" / "refdata" / "thumos14" / "annotation_test"


def _ground_truth(rng):
    if REFDATA.is_dir():
        from vidseg_cli.datasets.temporal_gt import load_temporal_gt

        gt = load_temporal_gt(REFDATA)
        names, inv = np.unique(np.r_[gt.video, gt.amb_video], return_inverse=True)
        n = len(gt.video)
        return inv[:n], gt.segments, gt.label, inv[n:], gt.amb_segments, len(names), "real THUMOS14 test"
    nv, n = 213, 3358
    gv = rng.integers(0, nv, n)
    s = rng.uniform(0, 200, n)
    gs = np.stack([s, s + rng.uniform(1, 10, n)], 1)
    av = rng.integers(0, nv, 99)
    s = rng.uniform(0, 200, 99)
    return gv, gs, rng.integers(0, 20, n), av, np.stack([s, s + 2], 1), nv, "generated"


def _detections(rng, gv, gs, gl, nv, n):
    near = n // 3
    pick = rng.integers(0, len(gv), near)
    length = gs[pick, 1] - gs[pick, 0]
    s = gs[pick, 0] + rng.normal(0, 0.2, near) * length
    e = gs[pick, 1] + rng.normal(0, 0.2, near) * length
    lab = np.where(rng.random(near) < 0.8, gl[pick], rng.integers(0, 20, near))
    far = n - near
    fs = rng.uniform(0, 200, far)
    dv = np.r_[gv[pick], rng.integers(0, nv, far)]
    ds = np.r_[np.stack([s, np.maximum(e, s + 0.1)], 1), np.stack([fs, fs + rng.uniform(0.5, 15, far)], 1)]
    dl = np.r_[lab, rng.integers(0, 20, far)]
    sc = np.round(rng.random(n), 3)  # 3 decimals: many ties, as real score files have
    order = rng.permutation(n)
    return dv[order], ds[order], dl[order], sc[order]


def _time(repeat, fn, *args, **kwargs):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(quick: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    gv, gs, gl, av, aseg, nv, source = _ground_truth(rng)
    n = 20_000 if quick else 100_000
    dv, ds, dl, sc = _detections(rng, gv, gs, gl, nv, n)
    figures = []
    for name, fast, slow, thr, extra in (
        ("activitynet", average_precision_activitynet, activitynet_reference, ACTIVITYNET_TIOU, {}),
        ("thumos14", average_precision_thumos14, thumos14_reference, THUMOS14_TIOU,
         {"amb_video": av, "amb_segments": aseg}),
    ):
        args = (gv, gs, gl, dv, ds, dl, sc, 20, thr)
        t_fast, r = _time(1 if quick else 3, fast, *args, **extra)
        t_ref, ref = _time(1, slow, *args, *extra.values())
        agree = bool(np.allclose(r.ap, ref, atol=1e-9, equal_nan=True))
        ratio = t_ref / t_fast
        print(f"  {name}: vectorized {t_fast:.3f} s (target < 2 s), reference loop {t_ref:.2f} s, "
              f"speed-up x{ratio:.1f}, mAP@{thr[len(thr) // 2]:.2f} = {r.mAP[len(thr) // 2]:.4f}, "
              f"same AP: {agree}")
        figures.append({
            "name": f"{name} mAP, {n:,} detections x {len(thr)} thresholds: reference loop / vectorized",
            "ratio": ratio,
            "target": "> 1, and vectorized < 2 s",
            "ok": bool(ratio > 1 and t_fast < 2.0 and agree),
            "detail": {"vectorized_s": t_fast, "reference_s": t_ref, "detections": n,
                       "ground_truth": int(len(gv)), "videos": int(nv), "gt_source": source,
                       "thresholds": [float(t) for t in thr], "same_ap": agree},
        })
    return figures


if __name__ == "__main__":
    import sys

    for f in run(quick="--quick" in sys.argv):
        print(f)
