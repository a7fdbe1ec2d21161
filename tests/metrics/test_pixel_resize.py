"""Predictions made on frames that extract-frames resized (`--short-side`, `--size`) are
scored at the ground truth's size when their frames file (found through provenance)
records a source of that size: labels by nearest neighbour, scores bilinearly before the
argmax, with one notice line per run. Real DAVIS 2016 sequences (the `refdata` fixture)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.datasets import masks as mio
from vidseg_cli.errors import InputError
from vidseg_cli.metrics.pixel_report import evaluate_pixel

NAMES = ["background", "object"]


def _small(fg: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(T, H, W) foreground -> (T, h, w) fraction of foreground, as a model on frames
    resized by extract-frames (INTER_AREA) would see it."""
    return np.stack([cv2.resize(m.astype(np.float32), size_wh, interpolation=cv2.INTER_AREA)
                     for m in fg])


def _labels(path, vid, labels, frames=None):
    store.write_labels(path, labels.astype(np.uint8), video_id=vid, num_frames=len(labels),
                       fps=25.0, class_names=NAMES, inputs=[frames] if frames else [],
                       command="test")
    return path


def _scores(path, vid, fg_fraction, stride, frames):
    probs = np.stack([1 - fg_fraction, fg_fraction], axis=1).astype(np.float32)  # T x 2 x h x w
    store.write_scores(path, probs, video_id=vid, num_frames=len(probs), fps=25.0,
                       class_names=NAMES, attrs={"spatial_stride": stride}, inputs=[frames],
                       command="test")
    return path


def _frames(path, vid, t, hw, source_wh):
    store.write(path, "frames", {"frames": np.zeros((t, *hw, 3), np.uint8),
                                 "timestamps": np.arange(t) / 25.0},
                video_id=vid, num_frames=t, fps=25.0, attrs={"source_size": list(source_wh)},
                command="test")
    return path


def test_downscaled_predictions_of_davis_score_close_to_one(cli, refdata, tmp_path):
    davis = refdata / "davis2016"
    ann = {s: mio.read_davis_sequence(davis / "Annotations" / "480p" / s).masks > 0
           for s in ("blackswan", "dance-twirl")}
    # the real pipeline's first step: frames of 427x240 that record their 854x480 source
    frames = {}
    for seq in ann:
        frames[seq] = tmp_path / f"{seq}.frames.h5"
        r = cli("extract-frames", davis / "JPEGImages" / "480p" / seq, "--short-side", "240",
                "-o", frames[seq], "-q")
        assert r.exit_code == 0, r.stderr
    # labels made on those frames (segment-3d -> crf-refine), and Sep3D-style scores at
    # stride 4 on them (107x60 cells), both made from the ground truth itself
    lab = _labels(tmp_path / "blackswan.labels.h5", "blackswan",
                  _small(ann["blackswan"], (427, 240)) > 0.5, frames["blackswan"])
    sco = _scores(tmp_path / "dance-twirl.scores.h5", "dance-twirl",
                  _small(ann["dance-twirl"], (107, 60)), 4, frames["dance-twirl"])
    r = cli("evaluate", lab, sco, "--gt", davis, "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["per_sequence"]["blackswan"]["J"]["mean"] > 0.97
    assert res["per_sequence"]["dance-twirl"]["J"]["mean"] > 0.9
    assert res["resized"] == {"blackswan": {"from": "427x240", "to": "854x480"},
                              "dance-twirl": {"from": "427x240", "to": "854x480"}}
    notices = [line for line in r.stderr.splitlines() if "resized" in line]
    assert notices == ["vidseg evaluate: 2 prediction(s) made on resized frames brought to the "
                       "ground truth's size (labels by nearest neighbour, scores bilinearly "
                       "before the argmax): 427x240 -> 854x480 (2 videos)"]


def test_full_size_predictions_are_scored_as_before(cli, refdata, tmp_path):
    davis = refdata / "davis2016"
    gt = mio.read_davis_sequence(davis / "Annotations" / "480p" / "blackswan").masks > 0
    p = _labels(tmp_path / "blackswan.labels.h5", "blackswan", gt)
    res = evaluate_pixel([str(p)], str(davis))
    assert res["J"] == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    assert res["F"] == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    assert "resized" not in res
    r = cli("evaluate", p, "--gt", davis)
    assert r.exit_code == 0 and "resized" not in r.stderr


def test_labels_ground_truth_and_sizes_no_frames_file_explains(tmp_path):
    fg = np.zeros((2, 48, 64), bool)
    fg[:, 8:40, 16:48] = True
    (tmp_path / "gt").mkdir()
    gt = _labels(tmp_path / "gt" / "a.labels.h5", "a", fg)
    fr = _frames(tmp_path / "a.frames.h5", "a", 2, (24, 32), (64, 48))
    small = _labels(tmp_path / "a.labels.h5", "a", fg[:, ::2, ::2], fr)  # 32x24
    res = evaluate_pixel([str(small)], str(gt))
    assert res["foreground_iou"] == pytest.approx(1.0)
    assert res["resized"] == {"a": {"from": "32x24", "to": "64x48"}}
    # --size 16x24 (the aspect changed) is brought back as well: the source size decides
    fr2 = _frames(tmp_path / "a2.frames.h5", "a", 2, (24, 16), (64, 48))
    thin = _labels(tmp_path / "a2.labels.h5", "a", fg[:, ::2, ::4], fr2)
    assert evaluate_pixel([str(thin)], str(gt))["foreground_iou"] == pytest.approx(1.0)
    # no frames file, or one from a source of another size: the sizes don't pair
    orphan = _labels(tmp_path / "b.labels.h5", "a", fg[:, ::2, ::2])
    other = _frames(tmp_path / "c.frames.h5", "a", 2, (24, 32), (128, 96))
    elsewhere = _labels(tmp_path / "c.labels.h5", "a", fg[:, ::2, ::2], other)
    for p in (orphan, elsewhere):
        with pytest.raises(InputError, match="32x24 .*64x48, and they were not made on frames"):
            evaluate_pixel([str(p)], str(gt))
