"""The FSN learning check's record (docs/fsn.md): evaluates localize outputs with the
metrics package and compares WFSN with random segments.

    python -m benchmarks.fsn.learning RUN_ROOT [--out benchmarks/fsn/learning.json]

RUN_ROOT holds the run folders of docs/fsn.md's commands (synth/, loc_flow/, loc_wfsn/,
loc_rgb/, loc_fused/, and the train run folders with their log.jsonl). Two random baselines
for WFSN, each with as many detections per test video as WFSN made there, mean and spread
over 10 seeds: "prior" (random class and score, a length uniform in the synthetic set's
action lengths, 24-50 frames, a prior the models do not get, placed uniformly) and
"shuffle" (WFSN's own detections moved to random positions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _eval(files, gt, tiou=None) -> dict:
    from vidseg_cli.datasets.predictions import read_frame_scores, read_predictions
    from vidseg_cli.metrics.temporal_report import evaluate_detections, evaluate_frames

    files = [str(f) for f in files]
    if files[0].endswith(".frame_scores.h5"):
        r = evaluate_frames(read_frame_scores(files), gt)
        return {"frame_mAP": r["mAP"], "AP": r["AP"]}
    r = evaluate_detections(read_predictions("detections", files), gt, "activitynet", thresholds=tiou)
    return {"mAP": r["mAP"], "average_mAP": r["average_mAP"]}


def random_segments(det_dir: Path, gt, tiou, seeds: int = 10, mode: str = "prior") -> dict:
    """mode "prior": random class, length uniform in 24-50 frames (the set's action lengths),
    random position and score; mode "shuffle": the method's own detections (class, length,
    score) moved to uniformly random positions, which isolates where it puts them."""
    from vidseg_cli import store

    recs = [store.read_detections(p) for p in sorted(det_dir.glob("*.detections.h5"))]
    res = []
    with __import__("tempfile").TemporaryDirectory() as d:
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            files = []
            for r in recs:
                n, T = len(r["scores"]), r.num_frames
                if mode == "prior":
                    length = rng.integers(24, 51, n)
                    lab, score = rng.integers(1, len(r.class_names), n), rng.random(n)
                else:
                    length = (r["segments"][:, 1] - r["segments"][:, 0]).astype(np.int64)
                    lab, score = r["labels"], r["scores"]
                start = rng.integers(0, np.maximum(T - length, 0) + 1)
                seg = np.stack([start, np.minimum(start + length, T)], 1)
                f = Path(d) / f"{seed}_{r.video_id}.detections.h5"
                store.write_detections(f, seg, lab, score, video_id=r.video_id, num_frames=T,
                                       fps=r.fps, class_names=r.class_names)
                files.append(f)
            res.append(_eval(files, gt, tiou)["mAP"])
    keys = res[0].keys()
    return {k: {"mean": float(np.mean([r[k] for r in res])), "std": float(np.std([r[k] for r in res]))}
            for k in keys}


def main(argv=None) -> int:
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/fsn/learning.json"))
    ap.add_argument("--runs", type=Path, default=None, help="JSON with the runs' commands, times and loads")
    a = ap.parse_args(argv)
    gt = load_temporal_gt(a.root / "synth", "testing")
    out: dict = {"ground_truth": "vidseg synth (seed 0, defaults), subset testing (16 videos)",
                 "protocol": "activitynet", "results": {}}
    if a.runs and a.runs.exists():
        out["runs"] = json.loads(a.runs.read_text())
    for name in ("loc_flow", "loc_rgb", "loc_fused", "loc_wfsn"):
        d = a.root / name
        if not d.is_dir():
            continue
        tiou = [0.1, 0.3, 0.5] if name == "loc_wfsn" else [0.3, 0.5, 0.7]
        out["results"][name] = {"frames": _eval(sorted(d.glob("*.frame_scores.h5")), gt),
                                "detections": _eval(sorted(d.glob("*.detections.h5")), gt, tiou)}
    if (a.root / "loc_wfsn").is_dir():
        for mode in ("prior", "shuffle"):
            out["results"][f"random_segments_{mode}"] = random_segments(a.root / "loc_wfsn", gt, [0.1, 0.3, 0.5],
                                                                        mode=mode)
    for run in ("bb_flow", "bb_rgb", "fsn_flow", "fsn_rgb", "wfsn_flow"):
        log = a.root / run / "log.jsonl"
        if log.exists():
            out.setdefault("logs", {})[run] = [json.loads(x) for x in log.read_text().splitlines()]
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["results"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
