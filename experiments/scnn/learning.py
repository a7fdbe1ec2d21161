"""The S-CNN learning check (docs/scnn.md): train the CPU-sized networks with
scripts/sample_weights/scnn.sh, then run extract-frames -> propose -> localize (scnn) ->
evaluate on the synthetic test videos, and record times, load and mAP in
experiments/scnn/learning.json. Baselines from the same run: S-CNN without the proposal
network (every sliding window localized, Table 3) and random windows.

    python -m experiments.scnn.learning [--work runs/learning/scnn] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def sh(*args, env=None) -> str:
    r = subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, env=env)
    return r.stdout


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def evaluate(det_dir: Path, gt: Path) -> dict:
    out = json.loads(sh("vidseg", "evaluate", *sorted(det_dir.glob("*.detections.h5")), "--gt", gt,
                        "--subset", "testing", "--protocol", "activitynet", "--tiou", "0.3,0.4,0.5,0.6,0.7",
                        "--json", "-"))
    return {"mAP": out["mAP"], "AP@0.5": {c: (v or {}).get("0.5") for c, v in out["AP"].items()}}


def random_windows(prop_dir: Path, out_dir: Path, classes: list[str], seed: int = 0) -> None:
    """As many random sliding windows as S-CNN detected, with random classes and scores."""
    from vidseg_cli import store
    from vidseg_cli.stages.windows import multiscale_windows

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in sorted(prop_dir.glob("*.proposals.h5")):
        rec = store.read_proposals(p)
        win = multiscale_windows(rec.num_frames)
        n = min(len(win), 10)
        pick = rng.choice(len(win), n, replace=False)
        store.write_detections(out_dir / p.name.replace(".proposals.h5", ".detections.h5"),
                               win[pick].astype(float), rng.integers(1, len(classes), n), rng.random(n),
                               class_names=classes, video_id=rec.video_id, num_frames=rec.num_frames,
                               fps=rec.fps, inputs=[str(p)], command="random baseline")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="runs/learning/scnn")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    work = Path(args.work)
    env = {**os.environ, "THREADS": str(args.threads)}
    rec: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
                 "threads": args.threads, "load_before": load()}
    t0 = time.perf_counter()
    sh("nice", "bash", ROOT / "scripts" / "sample_weights" / "scnn.sh", work, env=env)
    rec["script_seconds"] = round(time.perf_counter() - t0, 1)
    rec["load_after_training"] = load()
    rec["stages"] = {}
    for stage in ("proposal", "classification", "localization"):
        s = json.loads((work / stage / "summary.json").read_text())
        log = [json.loads(x) for x in (work / stage / "log.jsonl").read_text().splitlines()]
        rec["stages"][stage] = {"steps": s["steps"], "seconds": s["seconds"], "best_val": s["best"],
                                "final_val": (s["final"] or {}).get("val"),
                                "positives": s["data"]["train_positives"],
                                "background_per_epoch": s["data"]["background_per_epoch"],
                                "val_curve": [r.get("val", {}).get("mean_class_accuracy") for r in log]}
    rec["training_seconds"] = round(sum(v["seconds"] for v in rec["stages"].values()), 1)

    # The pipeline on the synthetic test videos.
    synth, w = work / "synth", ROOT / "sample_data" / "weights"
    test = sorted((synth / "videos").glob("synth_test_*.mp4"))
    t1 = time.perf_counter()
    sh("vidseg", "extract-frames", *test, "-o", work / "frames", "-q", "--overwrite")
    frames = sorted((work / "frames").glob("*.frames.h5"))
    sh("vidseg", "propose", *frames, "--weights", w / "scnn_proposal_synth.ckpt", "-o", work / "proposals",
       "-q", "--overwrite")
    props = sorted((work / "proposals").glob("*.proposals.h5"))
    sh("vidseg", "localize", *props, "--method", "scnn", "--weights", w / "scnn_localization_synth.ckpt",
       "-o", work / "detections", "-q", "--overwrite")
    rec["pipeline_seconds"] = round(time.perf_counter() - t1, 1)
    rec["scnn"] = evaluate(work / "detections", synth)
    from vidseg_cli import store

    kept = [store.read_proposals(p) for p in props]
    rec["proposals"] = {"windows": int(sum(p.attrs["num_windows"] for p in kept)),
                        "kept": int(sum(len(p["segments"]) for p in kept))}

    # Baselines: without the proposal network (Table 3), and random windows.
    sh("vidseg", "propose", *frames, "--method", "sliding", "-o", work / "sliding", "-q", "--overwrite")
    sh("vidseg", "localize", *sorted((work / "sliding").glob("*.h5")), "--method", "scnn", "--weights",
       w / "scnn_localization_synth.ckpt", "-o", work / "detections_sliding", "-q", "--overwrite")
    rec["scnn_without_proposal"] = evaluate(work / "detections_sliding", synth)
    classes = store.read_detections(next((work / "detections").glob("*.h5"))).class_names
    rand = []
    for seed in range(5):
        random_windows(work / "proposals", work / f"random{seed}", classes, seed)
        rand.append(evaluate(work / f"random{seed}", synth)["mAP"]["0.5"])
    rec["random_windows_mAP@0.5"] = {"mean": float(np.mean(rand)), "runs": rand}
    rec["load_after"] = load()
    rec["passed"] = (rec["scnn"]["mAP"]["0.5"] or 0) >= 0.5 and rec["training_seconds"] <= 1200
    out = ROOT / "experiments" / "scnn" / "learning.json"
    out.write_text(json.dumps(rec, indent=2) + "\n")
    print(json.dumps({k: rec[k] for k in ("training_seconds", "scnn", "scnn_without_proposal",
                                          "random_windows_mAP@0.5", "passed")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
