"""3DFCN foreground / localization IoU, J-HMDB per-video mean IoU, Segment-tube per-category
IoU, Sep3D frame-mAP: worked examples by hand; the real J-HMDB puppet masks read."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REFDATA
from vidseg_cli.datasets import masks as mio
from vidseg_cli.errors import InputError
from vidseg_cli.geometry import box_iou, boxes_from_masks
from vidseg_cli.metrics import masks as mm

JHMDB = REFDATA / "jhmdb" / "puppet_mask"
needs_jhmdb = pytest.mark.skipif(not JHMDB.is_dir(), reason="../shared/refdata/jhmdb not present")


# -- IoUs by hand --------------------------------------------------------------------
def test_foreground_and_localization_by_hand():
    gt = np.array([[1, 1, 0], [2, 0, 0]])
    pred = np.array([[1, 2, 2], [2, 0, 3]])
    # foreground: gt fg at 0,1,3; pred fg at 0,1,2,3,5 -> I = 3, U = 5
    assert mm.foreground_counts(gt, pred) == (3, 5)
    # localization, classes in gt {1, 2}: P1={0} G1={0,1} -> I 1, U 2;
    # P2={1,2,3} G2={3} -> I 1, U 3. Class 3 (absent from gt) is in no pair.
    assert mm.localization_counts(gt, pred) == (2, 5)


def test_localization_wrong_class_everywhere():
    gt = np.zeros((2, 3, 3), np.uint8)
    gt[:, 1, 1] = 4
    pred = np.where(gt > 0, 7, 0)  # right pixels, wrong class
    assert mm.foreground_counts(gt, pred) == (2, 2)
    assert mm.localization_counts(gt, pred) == (0, 2)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="shapes differ"):
        mm.video_counts(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)))


def test_accumulate_by_hand():
    # video a (category x): fg I/U = 3/4; loc 1/5. video b (x): 1/4, loc 1/4.
    # video c (y): both empty: union 0, IoU 1 by convention.
    counts = {
        "a": mm.VideoCounts(3, 4, 1, 5, frames=2),
        "b": mm.VideoCounts(1, 4, 1, 4, frames=3),
        "c": mm.VideoCounts(0, 0, 0, 0, frames=1),
    }
    r = mm.accumulate(counts, {"a": "x", "b": "x", "c": "y"})
    assert r["foreground_iou"] == pytest.approx(4 / 8)  # summed over the dataset
    assert r["localization_iou"] == pytest.approx(2 / 9)
    assert r["mean_iou_per_video"] == pytest.approx((0.75 + 0.25 + 1.0) / 3)
    assert r["per_category_iou"] == pytest.approx({"x": 0.5, "y": 1.0})
    assert r["mean_per_category_iou"] == pytest.approx(0.75)
    assert (r["num_videos"], r["num_frames"]) == (3, 6)
    assert mm.accumulate(counts, class_aware=False)["localization_iou"] is None


def test_video_counts_match_brute_force():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 4, size=(3, 5, 6))
    pred = rng.integers(0, 5, size=(3, 5, 6))
    c = mm.video_counts(gt, pred)
    i = u = 0
    for k in np.unique(gt[gt > 0]):
        i += np.sum((pred == k) & (gt == k))
        u += np.sum((pred == k) | (gt == k))
    assert (c.loc_inter, c.loc_union) == (i, u)
    g, q = gt > 0, pred > 0
    assert (c.fg_inter, c.fg_union) == (np.sum(g & q), np.sum(g | q))
    assert c.frames == 3


# -- boxes and frame-mAP -------------------------------------------------------------
def test_boxes_from_masks():
    m = np.zeros((2, 5, 6), bool)
    m[0, 1:3, 2:5] = True
    m[0, 4, 0] = True
    b = boxes_from_masks(m)
    assert b[0].tolist() == [0, 1, 4, 4]  # x1 y1 x2 y2, inclusive
    assert np.isnan(b[1]).all()  # empty frame


def test_box_iou_by_hand():
    # 2x2 boxes overlapping in one pixel: 1 / (4 + 4 - 1)
    assert box_iou([[0, 0, 1, 1]], [[1, 1, 2, 2]])[0] == pytest.approx(1 / 7)
    assert box_iou([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0] == 0.0


def test_average_precision_by_hand():
    # ranked: TP, FP, TP with 2 ground truths. PR points (R, P): (0,1) (.5,1) (.5,.5) (1,2/3)
    # trapezoids: .5*(1+1)/2 + 0 + .5*(.5+2/3)/2 = .5 + .291666...
    ap = mm.average_precision([0.9, 0.8, 0.7], [True, False, True], 2)
    assert ap == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert np.isnan(mm.average_precision([0.5], [False], 0))


def _box_mask(t: int, boxes: list) -> np.ndarray:
    m = np.zeros((t, 6, 6), bool)
    for i, b in enumerate(boxes):
        if b is not None:
            x1, y1, x2, y2 = b
            m[i, y1 : y2 + 1, x1 : x2 + 1] = True
    return m


def test_frame_map_by_hand():
    # v1 is class a (2 frames), v2 class b (1 frame).
    gt_masks = {
        "v1": _box_mask(2, [(0, 0, 1, 1), (0, 0, 1, 1)]),
        "v2": _box_mask(1, [(2, 2, 3, 3)]),
    }
    pred = {"v1": _box_mask(2, [(0, 0, 1, 1), (1, 1, 2, 2)]), "v2": _box_mask(1, [(2, 2, 3, 3)])}
    scores = {"v1": np.array([0.9, 0.2]), "v2": np.array([0.6, 0.7])}
    gt_boxes = {v: boxes_from_masks(m) for v, m in gt_masks.items()}
    r = mm.frame_map(pred, scores, gt_boxes, {"v1": 0, "v2": 1}, ["a", "b"])
    # class a, 2 ground truths: v1f0 (.9, IoU 1: TP), v1f1 (.9, IoU 1/7: FP), v2f0 (.6, FP)
    #   PR: (0,1) (.5,1) (.5,.5) (.5,1/3) -> AP .5
    # class b, 1 ground truth: v2f0 (.7, TP) first, then two FPs -> AP 1
    assert r["AP"] == pytest.approx({"a": 0.5, "b": 1.0})
    assert r["frame_mAP"] == pytest.approx(0.75)


def test_frame_map_empty_prediction_frames_and_bad_scores():
    gt = {"v": boxes_from_masks(_box_mask(2, [(0, 0, 1, 1), None]))}
    pred = {"v": _box_mask(2, [None, (0, 0, 1, 1)])}  # box only where there is no truth
    r = mm.frame_map(pred, {"v": np.array([1.0])}, gt, {"v": 0}, ["a"])
    assert r["AP"]["a"] == 0.0
    with pytest.raises(ValueError, match="class scores"):
        mm.frame_map(pred, {"v": np.array([1.0, 2.0])}, gt, {"v": 0}, ["a"])


def test_frame_map_per_frame_classes_and_scores_by_hand():
    # video v: frames 0, 1 hold actors of class a (0) and b (1); frame 2 none; frame 3 an
    # actor of b whose predicted box has no scores (NaN row). Video w: one frame of b,
    # given as a per-video class with per-video scores.
    box = (0, 0, 1, 1)
    gt = {"v": boxes_from_masks(_box_mask(4, [box, box, None, box])),
          "w": boxes_from_masks(_box_mask(1, [box]))}
    pred = {"v": _box_mask(4, [box, box, (3, 3, 4, 4), box]), "w": _box_mask(1, [box])}
    scores = {"v": np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [np.nan, np.nan]]),
              "w": np.array([0.9, 0.1])}
    r = mm.frame_map(pred, scores, gt, {"v": np.array([0, 1, -1, 1]), "w": 1}, ["a", "b"])
    # class a, 1 ground truth (v f0): w .9 FP, v0 .8 TP, v2 .6 FP, v1 .3 FP
    #   PR (0,1) (0,0) (1,.5) (1,1/3) (1,1/4) -> AP = 1 * (0 + .5) / 2 = .25
    # class b, 3 ground truths (v f1, v f3, w): v1 .7 TP, v2 .4 FP, v0 .2 FP, w .1 TP
    #   PR (0,1) (1/3,1) (1/3,.5) (1/3,1/3) (2/3,.5) -> 1/3 + 1/3 * (1/3 + .5) / 2
    assert r["AP"]["a"] == pytest.approx(0.25)
    assert r["AP"]["b"] == pytest.approx(1 / 3 + (1 / 3 + 0.5) / 6)
    assert r["frame_mAP"] == pytest.approx((r["AP"]["a"] + r["AP"]["b"]) / 2)
    assert r["num_gt"] == {"a": 1, "b": 3} and r["num_detections"] == 4
    assert r["boxes_without_scores"] == 1


def test_frame_map_constant_per_frame_class_is_the_per_video_call():
    rng = np.random.default_rng(5)
    gt = {f"v{i}": boxes_from_masks(rng.random((3, 6, 6)) < 0.3) for i in range(3)}
    pred = {f"v{i}": rng.random((3, 6, 6)) < 0.3 for i in range(3)}
    vs = {f"v{i}": rng.random(4) for i in range(3)}
    cls = {"v0": 2, "v1": 0, "v2": 2}
    a = mm.frame_map(pred, vs, gt, cls, list("abcd"))
    b = mm.frame_map(pred, {v: np.tile(s, (3, 1)) for v, s in vs.items()}, gt,
                     {v: np.full(3, k) for v, k in cls.items()}, list("abcd"))
    assert a["AP"] == pytest.approx(b["AP"], nan_ok=True)


def _brute_frame_map(pred_boxes, scores, gt_boxes, gt_cls, c, thr):
    """Frame-mAP written out with pixel sets and explicit loops, independently of mm."""

    def pixels(b):
        x1, y1, x2, y2 = (int(v) for v in b)
        return {(x, y) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1)}

    aps = []
    for k in range(c):
        dets, n_gt = [], 0
        for v in gt_boxes:
            for f, g in enumerate(gt_boxes[v]):
                if not np.isnan(g[0]) and gt_cls[v][f] == k:
                    n_gt += 1
        for v in pred_boxes:
            for f, p in enumerate(pred_boxes[v]):
                if np.isnan(p[0]) or np.isnan(scores[v][f]).any():
                    continue
                g = gt_boxes[v][f]
                tp = False
                if not np.isnan(g[0]) and gt_cls[v][f] == k:
                    a, b = pixels(p), pixels(g)
                    tp = len(a & b) / len(a | b) >= thr
                dets.append((scores[v][f][k], tp))
        if n_gt == 0:
            continue
        order = sorted(range(len(dets)), key=lambda i: -dets[i][0])  # stable
        ap, hits, prev_r, prev_p = 0.0, 0, 0.0, 1.0
        for n, i in enumerate(order, start=1):
            hits += dets[i][1]
            r, p = hits / n_gt, hits / n
            ap += (r - prev_r) * (p + prev_p) / 2
            prev_r, prev_p = r, p
        aps.append(ap)
    return float(np.mean(aps))


@pytest.mark.parametrize("seed", range(4))
def test_frame_map_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    c, vids = 3, [f"v{i}" for i in range(4)]

    def boxes(t):
        b = np.sort(rng.integers(0, 8, size=(t, 2, 2)), axis=1).reshape(t, 4)  # x1 y1 x2 y2
        b = b.astype(float)
        b[rng.random(t) < 0.25] = np.nan
        return b

    pred = {v: boxes(6) for v in vids}
    gt = {v: boxes(6) for v in vids}
    # near-duplicates make true positives likely
    for v in vids:
        gt[v][:3] = pred[v][:3]
        g = pred[v][3:5] + rng.integers(-1, 2, size=(2, 4))
        gt[v][3:5] = np.concatenate([np.minimum(g[:, :2], g[:, 2:]), np.maximum(g[:, :2], g[:, 2:])], 1)
    gt_cls = {v: rng.integers(0, c, size=6) for v in vids}
    scores = {v: rng.random((6, c)) for v in vids}
    scores["v1"][2] = np.nan
    got = mm.frame_map_boxes(pred, scores, gt, gt_cls, list("abc"))
    assert got["frame_mAP"] == pytest.approx(_brute_frame_map(pred, scores, gt, gt_cls, c, 0.5))


# -- the real J-HMDB puppet masks ----------------------------------------------------
@needs_jhmdb
def test_real_jhmdb_masks_read():
    videos = mio.jhmdb_videos(JHMDB)
    assert len(videos) == 22  # one per class, plus a second catch video
    assert sorted({p.parent.name for p in videos.values()}) == list(mio.JHMDB_CLASSES)
    for vid, path in videos.items():
        v = mio.read_jhmdb_mat(path)
        t, h, w = v.masks.shape
        assert (h, w) == (240, 320) and 15 <= t <= 40, (vid, v.masks.shape)
        label = mio.JHMDB_CLASS_NAMES.index(path.parent.name)
        assert set(np.unique(v.masks)) <= {0, label} and (v.masks == label).any()
        assert v.category == path.parent.name and v.class_names == list(mio.JHMDB_CLASS_NAMES)
    v = mio.read_jhmdb_mat(videos["Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"])
    assert v.masks.shape == (40, 240, 320)  # its 40 real frames
    assert mio.JHMDB_CLASS_NAMES[v.masks.max()] == "catch"


def test_jhmdb_bad_files(tmp_path):
    import scipy.io

    d = tmp_path / "clap"
    d.mkdir()
    bad = d / "garbage.mat"
    bad.write_bytes(b"\x00\x01 nothing like a mat file")
    with pytest.raises(InputError, match="not a readable MATLAB") as e:
        mio.read_jhmdb_mat(bad)
    assert str(bad) in str(e.value)
    nokey = d / "nokey.mat"
    scipy.io.savemat(nokey, {"other": np.zeros((2, 2))})
    with pytest.raises(InputError, match="no 'part_mask'"):
        mio.read_jhmdb_mat(nokey)
    other = tmp_path / "juggle"
    other.mkdir()
    scipy.io.savemat(other / "v.mat", {"part_mask": np.zeros((4, 5, 2), np.uint8)})
    with pytest.raises(InputError, match="not a J-HMDB class"):
        mio.read_jhmdb_mat(other / "v.mat")
    ok = d / "v.mat"
    pm = np.zeros((4, 5, 2), np.uint8)
    pm[1, 2, 1] = 1
    scipy.io.savemat(ok, {"part_mask": pm})
    v = mio.read_jhmdb_mat(ok)
    assert v.masks.shape == (2, 4, 5)
    assert v.masks[1, 1, 2] == mio.JHMDB_CLASS_NAMES.index("clap")
    assert v.masks.sum() == v.masks[1, 1, 2]
