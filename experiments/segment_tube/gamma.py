"""γ (Eq. 4) for the Segment-tube learning check, chosen on the training videos the run
held out, never on the test videos (docs/segment_tube.md, "Learning check").

    python -m experiments.segment_tube.gamma OUT

The run's summary.json names its held-out videos (`data.held_out`). Their frames go through
`vidseg segment-tube --rounds 1 --frame-scores`: the first round's temporal step starts from
the saliency mask B_o whatever γ is, so one run gives α_t (Eq. 3) for every candidate. Each
γ's detections are made from α_t as the command makes them at that γ with its default
detection ladder (stages/segment_tube_temporal.ladder_detections), scored by `vidseg
evaluate` (ActivityNet protocol) against a ground truth holding the held-out videos only.
The γ with the highest mAP@0.5 wins; ties go to the higher γ, the nearer to the paper's
0.6. Writes OUT/gamma/choice.json and prints γ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vidseg_cli import store
from vidseg_cli.stages.segment_tube_temporal import LADDER, LADDER_NMS, ladder_detections

CANDIDATES = (0.3, 0.4, 0.5, 0.6)


def vidseg(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["vidseg", *map(str, args)], check=True, capture_output=True, text=True)


def detections_at(scores_dir: Path, gamma: float, out: Path) -> None:
    """The command's detections at `gamma` from each video's α_t: one file per video."""
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(scores_dir.glob("*.frame_scores.h5")):
        fs = store.read_frame_scores(p)
        lab = store.read_labels(p.with_name(p.name.replace(".frame_scores.h5", ".labels.h5")))
        k = int(lab.attrs["video_class"])
        alpha = np.asarray(fs["probs"])[:, k] if k else np.zeros(fs.num_frames)
        runs, scores = ladder_detections(alpha, k, (gamma, *LADDER), LADDER_NMS)
        store.write_detections(out / f"{fs.video_id}.detections.h5", runs.astype(float),
                               np.full(len(runs), k), scores,
                               class_names=fs.class_names, video_id=fs.video_id, num_frames=fs.num_frames,
                               fps=fs.fps, inputs=[str(p)], command=f"Eq. 4 at gamma {gamma}, ladder {LADDER}")


def choose(out: Path) -> dict:
    held = json.loads((out / "run" / "summary.json").read_text())["data"]["held_out"]
    if not held:
        raise SystemExit("the run held out no video: nothing to choose γ on")
    work = out / "gamma"
    gt = json.loads((out / "synth" / "gt.json").read_text())
    gt["database"] = {v: d for v, d in gt["database"].items() if v in held}
    work.mkdir(parents=True, exist_ok=True)
    (work / "gt.json").write_text(json.dumps(gt))
    vidseg("extract-frames", *(out / "synth" / "videos" / f"{v}.mp4" for v in held), "-o", work / "frames",
           "--overwrite", "-q")
    vidseg("segment-tube", *sorted((work / "frames").glob("*.frames.h5")), "--weights",
           out / "run" / "best.ckpt", "-o", work / "round1", "--rounds", "1", "--frame-scores",
           "--clip-mask", os.environ.get("CLIP_MASK", "soft"),
           "--device", "cpu", "--overwrite", "-q")
    maps = {}
    for g in CANDIDATES:
        detections_at(work / "round1", g, work / f"gamma_{g}")
        res = json.loads(vidseg("evaluate", *sorted((work / f"gamma_{g}").glob("*.h5")), "--gt",
                                work / "gt.json", "--subset", "training", "--protocol", "activitynet",
                                "--tiou", "0.5", "--json", "-").stdout)
        maps[str(g)] = res["mAP"]["0.5"] or 0.0
    best = max(CANDIDATES, key=lambda g: (maps[str(g)], g))
    rec = {"held_out": held, "mAP@0.5": maps, "gamma": best}
    (work / "choice.json").write_text(json.dumps(rec, indent=2) + "\n")
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the learning check's work folder")
    rec = choose(ap.parse_args(argv).out)
    print(rec["gamma"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
