"""A small folder of outputs for report tests: frames, labels made from them, detections
and frame scores, an evaluate record over them, and a training run's log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidseg_cli import store

NAMES = ["background", "jump", "run"]
T, H, W, FPS = 12, 48, 64, 10.0


def make_outputs(root: Path) -> Path:
    from vidseg_cli.api import evaluate

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = root / "frames" / "v1.frames.h5"
    frames.parent.mkdir()
    with store.FramesWriter(frames, height=H, width=W, fps=FPS, video_id="v1") as fw:
        for i in range(T):
            fw.append(rng.integers(60, 200, (H, W, 3), dtype=np.uint8), i / FPS)
    lab = np.zeros((T, H, W), np.uint8)
    lab[:, 10:30, 20:40] = 1
    seg = root / "segment"
    seg.mkdir()
    store.write_labels(seg / "v1.labels.h5", lab, class_names=NAMES, video_id="v1",
                       num_frames=T, fps=FPS, inputs=[store.input_record(frames)])
    gt = {"version": "test", "taxonomy": NAMES[1:], "database": {
        "v1": {"subset": "testing", "duration": T / FPS, "fps": FPS, "num_frames": T,
               "annotations": [{"segment": [0.1, 0.6], "label": "jump"},
                               {"segment": [0.7, 1.1], "label": "run"}]}}}
    (root / "gt.json").write_text(json.dumps(gt))
    det = root / "localize"
    det.mkdir()
    store.write_detections(det / "v1.detections.h5", [[1, 6], [7, 11], [2, 4]], [1, 2, 2],
                           [0.9, 0.8, 0.3], class_names=NAMES, video_id="v1", num_frames=T,
                           fps=FPS)
    probs = rng.dirichlet(np.ones(3), T).astype(np.float32)
    store.write_frame_scores(det / "v1.frame_scores.h5", probs, class_names=NAMES,
                             video_id="v1", num_frames=T, fps=FPS)
    doc = evaluate.load(evaluate.Options(tiou=np.array([0.3, 0.5, 0.7]))).run(
        {"predictions": [str(det / "v1.detections.h5")],
         "ground-truth": str(root / "gt.json")}).metrics
    (root / "eval.json").write_text(json.dumps(doc))
    run = root / "train_run"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(
        json.dumps({"epoch": e, "step": 10 * e, "loss": 1 / e, "lr": 0.01, "seconds": 1.0,
                    "val": {"mAP": 0.1 * e}}) + "\n" for e in range(1, 5)))
    return root
