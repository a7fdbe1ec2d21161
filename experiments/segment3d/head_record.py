"""The JSON record of benchmarks/segment3d/head_learning.sh (run by it; arguments: the
training command, its start/end times, segment-3d's start/end times, load averages before
and after training, the run folder, the output folder, the checkpoint name)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from benchmarks.records import portable


def localisation_bound(out: str) -> dict:
    """How far frame-mAP is limited by the boxes: the share of ground-truth frames whose
    predicted box (largest predicted region) has IoU >= 0.5, and the frame-mAP the same
    boxes would get from a perfect classifier (score 1 for the true class on frames with an
    actor, 1/A for every class on frames without one)."""
    from vidseg_cli.datasets import masks as mio
    from vidseg_cli.metrics import masks as mm
    from vidseg_cli.metrics.pixel_frame_map import frame_map_inputs

    per = {}
    for f in sorted(Path(out, "scores_head").glob("*.h5")):
        pred = mio.read_h5_masks(f)
        gt = mio.read_labels_file(Path(out, "synth", "labels", f"{pred.video_id}.labels.h5"))
        per[pred.video_id] = frame_map_inputs(f, gt, "labels", pred.masks)
    actions = next(iter(per.values()))[0]
    hit = total = 0
    oracle = {}
    for v, (_, pb, sc, gb, gc) in per.items():
        ok, has = ~np.isnan(gb[:, 0]), ~np.isnan(pb[:, 0])
        both = ok & has
        iou = np.zeros(len(gb))
        iou[both] = mm.box_iou(pb[both], gb[both])
        total += int(ok.sum())
        hit += int((iou[ok] >= 0.5).sum())
        o = np.full_like(sc, np.nan)
        o[has] = 0.0
        o[has & ~ok] = 1.0 / len(actions)
        idx = np.flatnonzero(both)
        o[idx, gc[idx]] = 1.0
        oracle[v] = o
    r = mm.frame_map_boxes({v: x[1] for v, x in per.items()}, oracle,
                           {v: x[3] for v, x in per.items()}, {v: x[4] for v, x in per.items()}, actions)
    return {"gt_frames_with_box_iou_0.5": hit / total, "frame_map_perfect_classifier": r["frame_mAP"]}


def main(argv: list[str]) -> None:
    import torch

    from vidseg_cli.datasets.segment_data import open_segment_dataset
    from vidseg_cli.models.checkpoint.format import build_from_checkpoint
    from vidseg_cli.train.head_metric import head_accuracy

    cmd, t0, t1, s0, s1, l0, l1, run, out, ckpt = argv
    ev = json.load(open(f"{out}/eval_head.json"))
    log = [json.loads(x) for x in open(f"{run}/log.jsonl")]
    cfg = json.load(open(f"{run}/config.json"))
    model, ck = build_from_checkpoint(f"{run}/{ckpt}.ckpt", expect_model="sep3d+head")
    test = open_segment_dataset(f"{out}/synth", target="classes").val  # the synth_test_* videos
    acc = head_accuracy(model, test, ck["preprocess"], torch.device("cpu"))
    counts = [n for _, n in acc["per_class"].values()]
    rec = {
        "what": ("Sep3D action head (train sep3d-head, default recipe"
                 + (", --joint: segmenter fine-tuned with it" if cfg["settings"]["recipe"].get("joint") else "")
                 + ") on the default synthetic set, on top of sample_data/weights/sep3d_synth.ckpt; "
                 "scored on the 16 synth_test_* videos"),
        "driver": "benchmarks/segment3d/head_learning.sh",
        "command": cmd, "train_seconds": round(float(t1) - float(t0), 1),
        "segment3d_seconds_16_videos": round(float(s1) - float(s0), 1),
        "load_before": l0, "load_after": l1, "checkpoint": f"{ckpt}.ckpt",
        "epochs": len(log), "steps": log[-1]["step"],
        "train_loss_per_epoch": [round(r["loss"], 4) for r in log],
        "val_accuracy_gt_masks_per_epoch_4_test_videos": [round(r["val"]["accuracy_gt_masks"], 4) for r in log],
        "recipe": cfg["settings"]["recipe"],
        "test_accuracy_gt_masks": acc["accuracy_gt_masks"], "test_loss_gt_masks": acc["loss"],
        "test_frames_with_actor": acc["frames"], "test_per_class_gt_masks": acc["per_class"],
        "chance": 1 / len(model.action_names), "majority_class_share": max(counts) / sum(counts),
        "test_frame_map": ev["frame_map"],
        "test_localisation_bound": localisation_bound(out),
        "val_foreground_iou_clips_per_epoch": [r["val"].get("foreground_iou_clips") for r in log],
        "val_before_training": cfg["settings"].get("val_before_training"),
        "segmentation_loss": cfg["settings"].get("segmentation_loss"),
        "test_foreground_iou": ev["foreground_iou"], "test_mean_iou_per_video": ev["mean_iou_per_video"],
    }
    rec = portable(rec, out)
    with open(f"{out}/head_learning.json", "w") as f:
        json.dump(rec, f, indent=1)
    print(json.dumps({k: rec[k] for k in ("train_seconds", "load_before", "load_after", "steps",
                                           "test_accuracy_gt_masks", "test_localisation_bound")}))
    print("frame-mAP", ev["frame_map"]["frame_mAP"], ev["frame_map"]["AP"])


if __name__ == "__main__":
    main(sys.argv[1:])
