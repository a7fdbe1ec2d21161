"""Scores of the Segment-tube learning check (docs/segment_tube.md, "Learning check"; issue 16
item 6) from the work folder of experiments/segment_tube/learning_check.sh, written to
experiments/segment_tube/learning.json with the driver's times.

    python -m experiments.segment_tube.learning OUT

Per run of segment-tube (OUT/st_r1, st_r2: --rounds 1, 2; OUT/st_r3: the default 3 rounds):
- temporal: `vidseg evaluate` of the detections, ActivityNet protocol; the video class k'
  against the set's one class per video;
- pixels: foreground IoU of the labels on all frames (the joint figure) and on the
  ground-truth action frames (`--pixel-frames gt-action`).
The spatial figure: the cut alone, from B_o on the ground-truth action frames, every round
(experiments/segment_tube/cut_alone.py); the thresholds apply to the mean of the videos'
IoUs, the measure of the spec's prototype, and the pooled IoU is reported beside it.
γ: the one experiments/segment_tube/gamma.py chose on the run's held-out training videos
(OUT/gamma/choice.json), read back from each output's attributes.
Baselines:
- the saliency start B_o (SLIC and static saliency at the command's defaults), painted with
  the run's k' on every frame (`saliency_all`), and on the frames the run labelled k' only
  (`saliency_same_frames`: the same temporal step, no cut);
- random windows as in the S-CNN check (experiments/scnn/learning.py): up to 10 of S-CNN's
  sliding windows per video, random classes and scores, 5 seeds, mAP@0.5.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from experiments.records import portable
from experiments.segment_tube.cut_alone import cut_alone
from vidseg_cli import store
from vidseg_cli.stages.saliency import initial_mask
from vidseg_cli.stages.superpixels import compute_superpixels, node_masks, working_frames
from vidseg_cli.stages.windows import multiscale_windows

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = (1, 2, 3)
THRESHOLDS = {"mAP@0.5": 0.25, "x_random": 5.0, "video_class_right": 12, "spatial_gain": 0.15,
              "spatial_level": 0.35, "joint_level": 0.12, "joint_x_saliency": 1.5, "seconds": 600}


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def evaluate(*args) -> dict:
    r = subprocess.run(["vidseg", "evaluate", *map(str, args), "--json", "-"], check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout)


def temporal(det_dir: Path, synth: Path) -> dict:
    out = evaluate(*sorted(det_dir.glob("*.detections.h5")), "--gt", synth, "--subset", "testing",
                   "--protocol", "activitynet", "--tiou", "0.3,0.5,0.7")
    return {"mAP": out["mAP"], "AP@0.5": {c: (v or {}).get("0.5") for c, v in out["AP"].items()}}


def pixels(label_dir: Path, gt_labels: Path, frames: str) -> dict:
    out = evaluate(*sorted(label_dir.glob("*.labels.h5")), "--gt", gt_labels, "--pixel-frames", frames)
    keys = ("foreground_iou", "localization_iou", "mean_iou_per_video", "mean_per_category_iou",
            "per_category_iou", "num_frames")
    return {k: out.get(k) for k in keys}


def gt_class(synth: Path) -> dict[str, str]:
    """video id -> its one ground-truth class (the set has one class per video)."""
    db = json.loads((synth / "gt.json").read_text())["database"]
    return {v: {a["label"] for a in d["annotations"]}.pop() for v, d in db.items()
            if d["subset"] == "testing" and d["annotations"]}


def run_figures(run: Path, synth: Path, truth: dict[str, str]) -> dict:
    """One segment-tube output folder: temporal, video class, pixel IoUs and its per-round
    attributes (per video)."""
    recs = {p.name.removesuffix(".labels.h5"): store.read_labels(p) for p in sorted(run.glob("*.labels.h5"))}
    right, rounds = {}, {}
    for vid, rec in recs.items():
        a = rec.attrs
        k = int(a["video_class"])
        right[vid] = {"predicted": rec.class_names[k] if k else None, "truth": truth.get(rec.video_id)}
        rounds[vid] = {key: np.asarray(a[key]).tolist() for key in
                       ("rounds", "converged", "round_video_class", "round_frames_kept",
                        "round_labels_changed", "round_nodes", "round_nodes_changed", "round_skipped")}
    n_right = sum(r["predicted"] == r["truth"] for r in right.values())
    gammas = {float(rec.attrs["gamma"]) for rec in recs.values()}
    return {"gamma": gammas.pop() if len(gammas) == 1 else sorted(gammas),
            "temporal": temporal(run, synth), "video_class_right": n_right, "videos": len(right),
            "video_class": right,
            "spatial_gt_action": pixels(run, synth / "labels", "gt-action"),
            "joint_all_frames": pixels(run, synth / "labels", "all"), "per_video_rounds": rounds}


def saliency_labels(frames_dir: Path, runs: dict[int, Path], out: Path) -> None:
    """B_o for every test video (the command's defaults), painted with each run's k': on all
    frames (out/all) and on that run's frames labelled k' (out/same_rR)."""
    for name in ["all", *(f"same_r{r}" for r in runs)]:
        (out / name).mkdir(parents=True, exist_ok=True)
    for fp in sorted(frames_dir.glob("*.frames.h5")):
        rec = store.read_frames(fp, load_frames=True)
        frames = np.asarray(rec["frames"])
        sp = compute_superpixels(frames)
        start = node_masks(sp, initial_mask(sp, working_frames(frames, 240)), frames.shape[1:3])
        for r, run in runs.items():
            lab = store.read_labels(run / f"{rec.video_id}.labels.h5")
            k = int(lab.attrs["video_class"])
            meta = dict(video_id=rec.video_id, num_frames=len(frames), fps=rec.fps, inputs=[str(fp)],
                        class_names=lab.class_names, command="saliency start B_o")
            if r == max(runs):
                store.write_labels(out / "all" / f"{rec.video_id}.labels.h5", start * np.uint8(k), **meta)
            alpha = np.zeros(len(frames))
            if k:
                fs = store.read_frame_scores(run / f"{rec.video_id}.frame_scores.h5")
                alpha = np.asarray(fs["probs"])[:, k]
            kept = (alpha > float(lab.attrs["gamma"]))[:, None, None]
            store.write_labels(out / f"same_r{r}" / f"{rec.video_id}.labels.h5",
                               (start & kept) * np.uint8(k), **meta)


def random_windows(det_dir: Path, out_dir: Path, seed: int) -> None:
    """As in the S-CNN check: up to 10 random sliding windows per video, random classes and scores."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in sorted(det_dir.glob("*.detections.h5")):
        rec = store.read_detections(p)
        win = multiscale_windows(rec.num_frames)
        n = min(len(win), 10)
        pick = rng.choice(len(win), n, replace=False)
        store.write_detections(out_dir / p.name, win[pick].astype(float),
                               rng.integers(1, len(rec.class_names), n), rng.random(n),
                               class_names=rec.class_names, video_id=rec.video_id,
                               num_frames=rec.num_frames, fps=rec.fps, inputs=[str(p)],
                               command="random baseline")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the driver's work folder")
    ap.add_argument("--record", default="learning.json", help="the record's name under experiments/segment_tube/")
    args = ap.parse_args(argv)
    out = args.out
    synth = out / "synth"
    truth = gt_class(synth)
    times = [json.loads(x) for x in (out / "times.jsonl").read_text().splitlines()]
    runs = {r: out / f"st_r{r}" for r in ROUNDS}
    t0, load0 = time.perf_counter(), load()
    rec: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                          capture_output=True, text=True).stdout.strip(),
                 "train": json.loads((out / "run" / "summary.json").read_text()),
                 "rounds": {str(r): run_figures(run, synth, truth) for r, run in runs.items()}}
    t_eval = time.perf_counter() - t0
    t1 = time.perf_counter()
    saliency_labels(out / "frames", runs, out / "saliency")
    t_sal = time.perf_counter() - t1
    rec["saliency_all"] = {"spatial_gt_action": pixels(out / "saliency" / "all", synth / "labels", "gt-action"),
                           "joint_all_frames": pixels(out / "saliency" / "all", synth / "labels", "all")}
    rec["saliency_same_frames"] = {str(r): pixels(out / "saliency" / f"same_r{r}", synth / "labels", "all")
                                   for r in ROUNDS}
    t2 = time.perf_counter()
    rec["cut_alone"] = cut_alone(out / "frames", synth / "labels", max(ROUNDS))
    t_cut = time.perf_counter() - t2
    if (out / "gamma" / "choice.json").exists():
        rec["gamma_choice"] = json.loads((out / "gamma" / "choice.json").read_text())
    rand = []
    for seed in range(5):
        random_windows(runs[3], out / f"random{seed}", seed)
        rand.append(temporal(out / f"random{seed}", synth)["mAP"]["0.5"])
    rec["random_windows_mAP@0.5"] = {"mean": float(np.mean(rand)), "runs": rand}
    rec["scoring_seconds"] = {"evaluate_runs": round(t_eval, 1), "saliency_start": round(t_sal, 1),
                              "cut_alone": round(t_cut, 1),
                              "all": round(time.perf_counter() - t0, 1), "load_before": load0,
                              "load_after": load()}
    rec["times"] = times

    # The check's figures (the default run, 3 rounds) against the thresholds.
    final = rec["rounds"]["3"]
    secs = {t["part"]: t["seconds"] for t in times}
    in_all = sum(secs.get(p, 0) for p in ("synth", "train", "gamma", "extract_frames", "segment_tube"))
    in_all += rec["scoring_seconds"]["evaluate_runs"] / len(ROUNDS) + t_sal / len(ROUNDS)
    m = final["temporal"]["mAP"]["0.5"] or 0.0
    rnd = rec["random_windows_mAP@0.5"]["mean"]
    cut = rec["cut_alone"]
    sal_gt, sp = cut["mean_per_video"][0], cut["mean_per_video"][-1]
    joint = final["joint_all_frames"]["foreground_iou"]
    sal_all = rec["saliency_all"]["joint_all_frames"]["foreground_iou"]
    sal_same = rec["saliency_same_frames"]["3"]["foreground_iou"]
    T = THRESHOLDS
    rec["summary"] = {
        "mAP@0.5": m, "random_mAP@0.5": rnd, "x_random": m / rnd if rnd else None,
        "video_class_right": f"{final['video_class_right']}/{final['videos']}",
        "gamma": final.get("gamma"),
        "spatial_saliency_start": sal_gt, "spatial_after_rounds": sp, "spatial_gain": sp - sal_gt,
        "spatial_pooled": {"start": cut["pooled"][0], "after_rounds": cut["pooled"][-1]},
        "spatial_per_round": {"mean_per_video": cut["mean_per_video"], "pooled": cut["pooled"]},
        "joint_on_gt_action_frames": final["spatial_gt_action"]["foreground_iou"],
        "joint": joint, "joint_saliency_all_frames": sal_all, "joint_saliency_same_frames": sal_same,
        "joint_x_saliency_all_frames": joint / sal_all if sal_all else None,
        "joint_x_saliency_same_frames": joint / sal_same if sal_same else None,
        "seconds_in_all": round(in_all, 1),
        "per_round": {r: {"mAP@0.5": v["temporal"]["mAP"]["0.5"], "video_class_right": v["video_class_right"],
                          "spatial": v["spatial_gt_action"]["foreground_iou"],
                          "joint": v["joint_all_frames"]["foreground_iou"]}
                      for r, v in rec["rounds"].items()},
    }
    rec["thresholds"] = T
    rec["met"] = {
        "mAP@0.5": m >= T["mAP@0.5"], "x_random": rnd > 0 and m >= T["x_random"] * rnd,
        "video_class_right": final["video_class_right"] >= T["video_class_right"],
        "spatial_gain": sp - sal_gt >= T["spatial_gain"], "spatial_level": sp >= T["spatial_level"],
        "joint_level": joint >= T["joint_level"],
        "joint_x_saliency_all_frames": bool(sal_all) and joint >= T["joint_x_saliency"] * sal_all,
        "joint_x_saliency_same_frames": bool(sal_same) and joint >= T["joint_x_saliency"] * sal_same,
        "seconds": in_all <= T["seconds"],
    }
    rec = portable(portable(rec, out), ROOT, ".")
    dest = ROOT / "experiments" / "segment_tube" / args.record
    dest.write_text(json.dumps(rec, indent=2) + "\n")
    print(json.dumps({"summary": rec["summary"], "met": rec["met"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
