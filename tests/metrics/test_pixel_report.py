"""The bridge `evaluate pixel`: J-HMDB / labels ground truth against our labels and scores
files, pairing by video id, warnings, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REFDATA
from vidseg_cli import store
from vidseg_cli.datasets import masks as mio
from vidseg_cli.errors import InputError
from vidseg_cli.metrics.pixel_report import evaluate_pixel, pixel_table

JHMDB = REFDATA / "jhmdb" / "puppet_mask"
needs_jhmdb = pytest.mark.skipif(not JHMDB.is_dir(), reason="../shared/refdata/jhmdb not present")
NAMES = list(mio.JHMDB_CLASS_NAMES)


def _labels(path: Path, vid: str, labels: np.ndarray, names=NAMES) -> Path:
    store.write_labels(path, labels, video_id=vid, num_frames=labels.shape[0], fps=30.0,
                       class_names=names, command="test")
    return path


def _gt_tree(tmp: Path) -> Path:
    """Two tiny J-HMDB-style videos: clap/a.mat (2 frames), wave/b.mat (3 frames)."""
    import scipy.io

    root = tmp / "puppet_mask"
    for cls, vid, t in (("clap", "a", 2), ("wave", "b", 3)):
        (root / cls).mkdir(parents=True)
        pm = np.zeros((4, 5, t), np.uint8)
        pm[1:3, 1:4, :] = 1  # 6 px a frame
        scipy.io.savemat(root / cls / f"{vid}.mat", {"part_mask": pm})
    return root


def test_labels_against_jhmdb_by_hand(tmp_path):
    gt = _gt_tree(tmp_path)
    clap, wave = NAMES.index("clap"), NAMES.index("wave")
    preds = tmp_path / "pred"
    preds.mkdir()
    a = np.zeros((2, 4, 5), np.uint8)
    a[:, 1:3, 1:4] = clap  # perfect
    b = np.zeros((3, 4, 5), np.uint8)
    b[:, 1:3, 1:3] = wave  # 4 of 6 px, right class
    b[:, 1:3, 3] = clap  # the other 2 px, wrong class
    b[0, 0, 0] = wave  # one extra px of the right class in frame 0
    _labels(preds / "a.labels.h5", "a", a)
    _labels(preds / "b.labels.h5", "b", b)
    r = evaluate_pixel([str(preds)], str(gt))
    # a: fg 12/12, loc 12/12. b: fg I 18, U 19; loc (wave) I 12, U |P_wave|+|G| - I = 13+18-12
    assert r["per_video"]["a"]["foreground_iou"] == 1.0
    assert r["per_video"]["b"]["foreground_iou"] == pytest.approx(18 / 19)
    assert r["per_video"]["b"]["localization_iou"] == pytest.approx(12 / 19)
    assert r["foreground_iou"] == pytest.approx(30 / 31)
    assert r["localization_iou"] == pytest.approx(24 / 31)
    assert r["mean_iou_per_video"] == pytest.approx((1 + 18 / 19) / 2)
    assert r["per_category_iou"] == pytest.approx({"clap": 1.0, "wave": 18 / 19})
    assert r["mean_per_category_iou"] == pytest.approx((1 + 18 / 19) / 2)
    assert r["warnings"] == []
    json.dumps(r)
    from rich.console import Console

    con = Console(record=True, width=120)
    con.print(pixel_table(r))
    text = con.export_text()
    assert "wave" in text and "localization IoU" in text


def test_class_names_are_matched_by_name(tmp_path):
    gt = _gt_tree(tmp_path)
    names = ["background", "wave", "clap", "juggle"]  # another order, one unknown class
    a = np.zeros((2, 4, 5), np.uint8)
    a[:, 1:3, 1:4] = 2  # "clap" in this file's numbering
    a[0, 0, 0] = 3  # "juggle"
    p = _labels(tmp_path / "a.labels.h5", "a", a, names)
    r = evaluate_pixel([str(p)], str(gt))
    v = r["per_video"]["a"]
    assert v["localization_iou"] == pytest.approx(1.0)  # juggle is in no class pair
    assert v["foreground_iou"] == pytest.approx(12 / 13)  # but it is foreground
    assert any("juggle" in w for w in r["warnings"])
    assert any("1 ground-truth video(s) have no prediction" in w for w in r["warnings"])
    with pytest.raises(InputError, match="'juggle' is not among"):
        evaluate_pixel([str(p)], str(gt), strict=True)


def test_scores_with_spatial_stride(tmp_path):
    gt = _gt_tree(tmp_path)
    clap = NAMES.index("clap")
    # (T, C, H', W') at stride 2 for a 4x5 frame: H' = 2, W' = 3; class clap wins in the
    # cells covering rows 0-3, cols 0-3 and loses in the last column of cells
    probs = np.zeros((2, len(NAMES), 2, 3), np.float32)
    probs[:, 0] = 0.5
    probs[:, clap, :, :2] = 0.9
    store.write_scores(tmp_path / "a.scores.h5", probs, video_id="a", num_frames=2, fps=30.0,
                       class_names=NAMES, attrs={"spatial_stride": 2}, command="test")
    v = mio.read_scores_file(tmp_path / "a.scores.h5", size=(4, 5))
    assert v.masks.shape == (2, 4, 5)
    # bilinear between cell centres x=0.5, 2.5, 4.5: column 3 (x=3) is 3/4 of the way from
    # 0.9 to 0.5 -> 0.6 vs background 0.5: clap; column 4: 0.5 vs 0.5 -> background (first)
    assert (v.masks[:, :, :4] == clap).all() and (v.masks[:, :, 4] == 0).all()
    r = evaluate_pixel([str(tmp_path / "a.scores.h5")], str(gt))
    # pred 16 px a frame over gt's 6: I 12, U 32 over two frames
    assert r["per_video"]["a"]["foreground_iou"] == pytest.approx(12 / 32)
    with pytest.raises(InputError, match="don't cover"):
        mio.read_scores_file(tmp_path / "a.scores.h5", size=(4, 7))


def test_png_predictions_are_class_agnostic(tmp_path):
    import cv2

    gt = _gt_tree(tmp_path)
    d = tmp_path / "res" / "a"
    d.mkdir(parents=True)
    m = np.zeros((4, 5), np.uint8)
    m[1:3, 1:4] = 255
    for i in range(2):
        cv2.imwrite(str(d / f"{i:05d}.png"), m)
    r = evaluate_pixel([str(tmp_path / "res")], str(gt))
    assert r["foreground_iou"] == 1.0 and r["localization_iou"] is None
    assert any("class-agnostic" in w for w in r["warnings"])


def test_wrong_size_and_frame_count_name_the_file(tmp_path):
    gt = _gt_tree(tmp_path)
    p = _labels(tmp_path / "a.labels.h5", "a", np.zeros((2, 4, 6), np.uint8))
    with pytest.raises(InputError, match="6x4") as e:
        evaluate_pixel([str(p)], str(gt))
    assert str(e.value).startswith(str(p))
    q = _labels(tmp_path / "b.labels.h5", "b", np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(InputError, match="2 frames, the ground truth") as e:
        evaluate_pixel([str(q)], str(gt))
    assert str(e.value).startswith(str(q))


def test_duplicate_and_unreadable_predictions(tmp_path):
    gt = _gt_tree(tmp_path)
    a = np.zeros((2, 4, 5), np.uint8)
    p1 = _labels(tmp_path / "x.labels.h5", "a", a)
    p2 = _labels(tmp_path / "y.labels.h5", "a", a)
    with pytest.raises(InputError, match="a second prediction for video 'a'"):
        evaluate_pixel([str(p1), str(p2)], str(gt))
    bad = tmp_path / "z.labels.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable HDF5") as e:
        evaluate_pixel([str(bad)], str(gt))
    assert str(bad) in str(e.value)


def test_labels_files_as_ground_truth(tmp_path):
    gdir = tmp_path / "gt"
    gdir.mkdir()
    g = np.zeros((2, 3, 3), np.uint8)
    g[:, 0, :] = 3
    g[1, 2, 2] = 5
    _labels(gdir / "v.labels.h5", "v", g)
    p = g.copy()
    p[1, 2, 2] = 3  # wrong class on one pixel
    pp = _labels(tmp_path / "v.labels.h5", "v", p)
    r = evaluate_pixel([str(pp)], str(gdir))
    assert r["foreground_iou"] == 1.0
    # classes in gt {3, 5}: P3 (7 px) vs G3 (6 px): 6/7; P5 (0) vs G5 (1): 0/1 -> 6/8
    assert r["localization_iou"] == pytest.approx(6 / 8)
    assert r["per_video"]["v"]["category"] == NAMES[3]  # its most frequent action


@needs_jhmdb
def test_real_jhmdb_against_itself(tmp_path):
    vid = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    v = mio.read_jhmdb_mat(JHMDB / "catch" / f"{vid}.mat")
    p = _labels(tmp_path / f"{vid}.labels.h5", vid, v.masks)
    r = evaluate_pixel([str(p)], str(JHMDB))
    assert r["num_videos"] == 1 and r["num_frames"] == 40
    assert r["foreground_iou"] == r["localization_iou"] == r["mean_iou_per_video"] == 1.0
    assert r["per_category_iou"] == {"catch": 1.0}
    assert any("21 ground-truth video(s)" in w for w in r["warnings"])


def test_foreground_only_predictions_have_no_class_aware_metrics(tmp_path):
    """A `--target foreground` model's classes are background/foreground: localization IoU
    (class-aware) is not applicable, said with a reason, "n/a" in the table; not 0.0."""
    from rich.console import Console

    gt = _gt_tree(tmp_path)
    fg = np.zeros((2, 4, 5), np.uint8)
    fg[:, 1:3, 1:3] = 1  # 4 of the 6 ground-truth pixels
    p = _labels(tmp_path / "a.labels.h5", "a", fg, ["background", "foreground"])
    for strict in (False, True):
        r = evaluate_pixel([str(p)], str(gt), strict=strict)
        assert r["foreground_iou"] == pytest.approx(4 / 6)
        assert r["localization_iou"] is None and r["per_video"]["a"]["localization_iou"] is None
        assert "background/foreground" in r["not_applicable"]["localization_iou"]
        assert not any("never match" in w for w in r["warnings"])
    con = Console(record=True, width=200)
    con.print(pixel_table(r))
    row = next(line for line in con.export_text().splitlines() if "localization IoU" in line)
    assert "n/a" in row
    # class-labelled predictions keep the figure, and no reason
    q = _labels(tmp_path / "b.labels.h5", "a", fg * NAMES.index("clap"))
    r = evaluate_pixel([str(q)], str(gt))
    assert r["localization_iou"] == pytest.approx(4 / 6) and "not_applicable" not in r


def test_pixel_frames_gt_action_scores_only_the_ground_truths_action_frames(tmp_path, cli):
    gdir = tmp_path / "gt"
    gdir.mkdir()
    g = np.zeros((4, 3, 3), np.uint8)
    g[1:3, 0, :] = 3  # action in frames 1 and 2 only (3 px each)
    _labels(gdir / "v.labels.h5", "v", g)
    p = g.copy()
    p[0, 2, :] = 3  # 3 false-positive px on frame 0 (no action there)
    p[3, 2, 0] = 3  # 1 on frame 3
    p[2, 0, 0] = 0  # 1 missed px on an action frame
    pp = _labels(tmp_path / "v.labels.h5", "v", p)
    every = evaluate_pixel([str(pp)], str(gdir))
    action = evaluate_pixel([str(pp)], str(gdir), pixel_frames="gt-action")
    # all frames: I 5, U 6 + 4 = 10; action frames: I 5, U 6
    assert every["foreground_iou"] == pytest.approx(5 / 10) and every["num_frames"] == 4
    assert action["foreground_iou"] == pytest.approx(5 / 6) and action["num_frames"] == 2
    assert action["pixel_frames"] == "gt-action" and every["pixel_frames"] == "all"
    out = tmp_path / "r.json"
    res = cli("evaluate", pp, "--gt", gdir, "--pixel-frames", "gt-action", "--json", out)
    assert res.exit_code == 0, res.output
    import json

    assert json.loads(out.read_text())["foreground_iou"] == pytest.approx(5 / 6)
