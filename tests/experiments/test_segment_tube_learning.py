"""A shortened Segment-tube learning check (experiments/segment_tube/, docs/segment_tube.md):
on a small one-class-per-video synthetic set, `train segment-tube` on the frozen trunk of
the bundled S-CNN weights, then `segment-tube` on the test videos. The networks must find
the video's class more often than chance and place detections better than random windows;
the cut alone (experiments/segment_tube/cut_alone.py) must raise the IoU of the saliency
start on the ground-truth action frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.segment_tube import learning
from experiments.segment_tube.cut_alone import cut_alone
from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow
TRUNK = SAMPLE / "weights" / "scnn_localization_synth.ckpt"


@pytest.mark.skipif(not TRUNK.exists(), reason="sample weights missing (make sample-weights)")
def test_shortened_learning_check(cli, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    synth = tmp_path / "synth"
    r = cli("synth", "-o", synth, "--seed", "11", "--train", "16", "--test", "4", "--classes-per-video", "1",
            "--size", "128x96", "-q")
    assert r.exit_code == 0, r.stderr
    r = cli("train", "segment-tube", "--data", synth, "-o", tmp_path / "run", "--init", TRUNK, "--hidden", "32",
            "--epochs", "12", "--val-fraction", "0", "--threads", "1", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    assert cli("extract-frames", *sorted((synth / "videos").glob("synth_test_*.mp4")), "-o",
               tmp_path / "frames", "-q").exit_code == 0
    # γ 0.4: the shortened networks (32 hidden states, 12 epochs, 16 videos) are less sure
    # of themselves than the full check's; this test checks that they learned, the full
    # check the paper's γ.
    r = cli("segment-tube", *sorted((tmp_path / "frames").glob("*.frames.h5")), "--weights",
            tmp_path / "run" / "best.ckpt", "-o", tmp_path / "st", "--rounds", "1", "--gamma", "0.4",
            "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr

    # The scorer of the full check, run in-process (it calls `vidseg evaluate`).
    def evaluate(*args):
        res = cli("evaluate", *args, "--json", "-")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout)

    monkeypatch.setattr(learning, "evaluate", evaluate)
    truth = learning.gt_class(synth)
    figures = learning.run_figures(tmp_path / "st", synth, truth)
    rand = []
    for seed in range(5):
        learning.random_windows(tmp_path / "st", tmp_path / f"random{seed}", seed)
        rand.append(learning.temporal(tmp_path / f"random{seed}", synth)["mAP"]["0.5"])
    got = figures["temporal"]["mAP"]["0.5"] or 0.0
    print(f"video class {figures['video_class_right']}/4, mAP@0.5 {got:.3f}, random {np.mean(rand):.3f}")
    assert figures["video_class_right"] >= 2  # chance is 1 in 4
    assert got > 2 * np.mean(rand) and got >= 0.1, (got, rand)

    cut = cut_alone(tmp_path / "frames", synth / "labels", rounds=1)
    print("cut alone, mean IoU per video", cut["mean_per_video"])
    assert cut["mean_per_video"][1] >= cut["mean_per_video"][0] + 0.1, cut
