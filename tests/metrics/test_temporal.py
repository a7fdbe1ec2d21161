"""Temporal metrics: worked examples checked by hand for both protocols, brute-force
cross-checks, the real THUMOS14 ground truth parsed and counted, and golden numbers from
the official scorers (tests/golden/*.json, made by running them locally; numbers only)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from benchmarks.evaluate.reference import activitynet_reference, thumos14_reference
from tests.conftest import GOLDEN
from vidseg_cli.datasets.predictions import read_predictions
from vidseg_cli.datasets.temporal_gt import (
    load_temporal_gt,
    read_activitynet_gt,
    write_activitynet_gt,
    write_thumos14_gt,
)
from vidseg_cli.errors import InputError
from vidseg_cli.metrics.frame_ap import frame_average_precision, rasterize
from vidseg_cli.metrics.temporal import (
    ACTIVITYNET_TIOU,
    average_precision_activitynet,
    average_precision_thumos14,
    interpolated_ap,
    segment_iou,
    thumos_overlap,
)
from vidseg_cli.metrics.temporal_report import evaluate_detections, evaluate_proposals

TH14_TEST = ("thumos14", "annotation_test")


def an(gt, det, thr, C=1):
    """ActivityNet AP for lists of (video, start, end, class) and (video, start, end, class, score)."""
    g, d = np.array(gt, float).reshape(-1, 4), np.array(det, float).reshape(-1, 5)
    return average_precision_activitynet(g[:, 0], g[:, 1:3], g[:, 3], d[:, 0], d[:, 1:3], d[:, 3], d[:, 4],
                                         C, thr)


def th(gt, det, thr, C=1, amb=()):
    g, d = np.array(gt, float).reshape(-1, 4), np.array(det, float).reshape(-1, 5)
    a = np.array(amb, float).reshape(-1, 3)
    return average_precision_thumos14(g[:, 0], g[:, 1:3], g[:, 3], d[:, 0], d[:, 1:3], d[:, 3], d[:, 4],
                                      C, thr, a[:, 0], a[:, 1:3])


# -- overlaps ---------------------------------------------------------------------------
def test_iou_by_hand():
    a = np.array([[0, 10], [10, 0]], float)
    b = np.array([[5, 15], [10, 20], [0, 10]], float)
    iou = segment_iou(a[:1], b)
    np.testing.assert_allclose(iou, [[1 / 3, 0, 1]])
    ov = thumos_overlap(a, b)
    # THUMOS14 orders each interval's ends: [10, 0] is [0, 10]
    np.testing.assert_allclose(ov, [[1 / 3, 0, 1], [1 / 3, 0, 1]])
    assert segment_iou([[8, 2]], [[0, 10]])[0, 0] == 0  # ActivityNet does not
    assert thumos_overlap([[8, 2]], [[0, 10]])[0, 0] == pytest.approx(0.6)


# -- worked examples ----------------------------------------------------------------------
# One video, one class. GT g1=[0,10], g2=[20,30]; detections by score:
# d1 [0,10] .9 (IoU 1 with g1), d2 [1,10] .8 (IoU .9 with g1, a duplicate),
# d3 [20,28] .7 (IoU .8 with g2), d4 [50,60] .6 (nothing).
GT1 = [(0, 0, 10, 0), (0, 20, 30, 0)]
DET1 = [(0, 0, 10, 0, .9), (0, 1, 10, 0, .8), (0, 20, 28, 0, .7), (0, 50, 60, 0, .6)]


def test_activitynet_worked_example():
    r = an(GT1, DET1, [0.5, 0.8, 0.9])
    # t=.5 and .8 (>=): TP FP TP FP; prec 1 .5 .67 .5, rec .5 .5 1 1;
    # interpolated: .5 * 1 + .5 * 2/3
    # t=.9: only d1 is a TP (d2 finds g1 taken): .5 * 1
    np.testing.assert_allclose(r.ap[0], [0.5 + 1 / 3, 0.5 + 1 / 3, 0.5])


def test_thumos14_worked_example():
    r = th(GT1, DET1, [0.5, 0.8, 0.9])
    # t=.5: TP FP TP FP -> (1 + 2/3) / 2; t=.8: d3's overlap .8 is not > .8 -> 1/2
    np.testing.assert_allclose(r.ap[0], [(1 + 2 / 3) / 2, 0.5, 0.5])


def test_protocols_match_differently():
    # One GT [0,10]; d1 [0,6] score .9 (IoU .6), d2 [0,10] score .5 (IoU 1).
    gt, det = [(0, 0, 10, 0)], [(0, 0, 6, 0, .9), (0, 0, 10, 0, .5)]
    # ActivityNet: d1 (first by score) takes the GT: prec 1, .5 at recall 1 -> AP 1
    assert an(gt, det, [0.5]).ap[0, 0] == pytest.approx(1.0)
    # THUMOS14: the GT takes its best detection d2, ranked second -> AP 1/2
    assert th(gt, det, [0.5]).ap[0, 0] == pytest.approx(0.5)


def test_ambiguous_segments():
    gt, amb = [(0, 0, 10, 0)], [(0, 20, 30)]
    det = [(0, 21, 29, 0, .9), (0, 0, 10, 0, .8)]
    # THUMOS14: d1 lies on an Ambiguous segment and matches nothing: dropped -> AP 1
    assert th(gt, det, [0.5], amb=amb).ap[0, 0] == pytest.approx(1.0)
    # without the Ambiguous segment it is a false positive ranked first -> 1/2
    assert th(gt, det, [0.5]).ap[0, 0] == pytest.approx(0.5)
    # a matched detection on an Ambiguous segment stays a true positive
    assert th(gt, [(0, 0, 10, 0, .9)], [0.5], amb=[(0, 5, 6)]).ap[0, 0] == pytest.approx(1.0)
    # ActivityNet has no Ambiguous class: d1 is a false positive -> .5
    assert an(gt, det, [0.5]).ap[0, 0] == pytest.approx(0.5)


def test_thumos14_ties_by_video_name_then_input_order():
    # Video 0 ("a") has an FP, video 1 ("b") a TP, both scored .5; the scorer sorts
    # videos by name, so the FP comes first: precision at the TP is 1/2.
    gt = [(1, 0, 10, 0)]
    det = [(1, 0, 10, 0, .5), (0, 0, 10, 0, .5)]
    assert th(gt, det, [0.5]).ap[0, 0] == pytest.approx(0.5)
    # the same with the video names the other way round: the TP comes first
    gt2 = [(0, 0, 10, 0)]
    det2 = [(0, 0, 10, 0, .5), (1, 0, 10, 0, .5)]
    assert th(gt2, det2, [0.5]).ap[0, 0] == pytest.approx(1.0)
    # within a video, equal scores keep input order: FP listed first -> 1/2
    assert th(gt2, [(0, 30, 40, 0, .5), (0, 0, 10, 0, .5)], [0.5]).ap[0, 0] == pytest.approx(0.5)
    # ... and a GT takes the first of two equally good detections
    r = th(gt2, [(0, 0, 10, 0, .5), (0, 0, 10, 0, .5)], [0.5])
    assert r.ap[0, 0] == pytest.approx(1.0)


def test_activitynet_score_ties_follow_numpys_argsort():
    # d0 TP, d1 FP (unknown video 5), same score: the order is np.argsort(scores)[::-1].
    det = [(0, 0, 10, 0, .5), (5, 0, 10, 0, .5)]
    first = int(np.argsort(np.array([.5, .5]))[::-1][0])
    expected = 1.0 if first == 0 else 0.5  # TP first: prec 1 at recall 1; FP first: .5
    assert an([(0, 0, 10, 0)], det, [0.5]).ap[0, 0] == pytest.approx(expected)


def test_duplicates_unknown_videos_and_empty_classes():
    gt = [(0, 0, 10, 0), (0, 0, 10, 1), (1, 0, 5, 2)]
    det = [(0, 0, 10, 0, .9), (0, 0, 10, 0, .8), (7, 0, 10, 0, .95), (0, 0, 10, 1, .1)]
    for f in (an, th):
        r = f(gt, det, [0.5], C=4)
        # class 0: FP (unknown video) .95, TP .9, FP duplicate .8
        # ActivityNet interpolates (.5 over the whole recall step); THUMOS14 takes .5
        assert r.ap[0, 0] == pytest.approx(0.5)
        assert r.ap[1, 0] == pytest.approx(1.0)
        assert r.ap[2, 0] == 0.0  # GT but no detection
        assert np.isnan(r.ap[3, 0])  # no GT: no AP, not in the mean
        assert r.mAP[0] == pytest.approx(0.5)


def test_interpolated_ap_by_hand():
    # [0,prec,0] made monotone from the right, summed over the recall steps
    assert interpolated_ap(np.array([1.0, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert interpolated_ap(np.array([0.5, 2 / 3]), np.array([0.5, 1.0])) == pytest.approx(2 / 3)


def test_vectorized_equals_reference_loops_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(25):
        nv, C = 4, 3
        ng, nd = rng.integers(1, 14), rng.integers(0, 40)
        gv, gl = rng.integers(0, nv, ng), rng.integers(0, C, ng)
        s = rng.integers(0, 20, ng).astype(float)
        gs = np.stack([s, s + rng.integers(1, 8, ng)], 1)
        dv, dl = rng.integers(0, nv + 1, nd), rng.integers(0, C, nd)
        s = rng.integers(0, 20, nd).astype(float)
        ds = np.stack([s, s + rng.integers(1, 8, nd)], 1)
        sc = rng.integers(0, 4, nd) / 4.0  # many ties
        av = rng.integers(0, nv, 2)
        s = rng.integers(0, 20, 2).astype(float)
        aseg = np.stack([s, s + 2], 1)
        thr = [0.1, 0.3, 0.5, 0.7]
        a = average_precision_activitynet(gv, gs, gl, dv, ds, dl, sc, C, thr).ap
        np.testing.assert_allclose(a, activitynet_reference(gv, gs, gl, dv, ds, dl, sc, C, thr))
        b = average_precision_thumos14(gv, gs, gl, dv, ds, dl, sc, C, thr, av, aseg).ap
        np.testing.assert_allclose(b, thumos14_reference(gv, gs, gl, dv, ds, dl, sc, C, thr, av, aseg))


# -- ground truth readers -------------------------------------------------------------------
def test_thumos14_test_ground_truth_counted(refdata):
    gt = load_temporal_gt(refdata.joinpath(*TH14_TEST))
    assert gt.format == "thumos14" and gt.subset == "test"
    assert len(gt) == 3358
    assert len(set(gt.video.tolist())) == 212
    assert len(gt.videos) == 213  # one video has only Ambiguous segments
    assert len(gt.amb_video) == 99
    assert gt.classes[0] == "BaseballPitch" and gt.classes[-1] == "VolleyballSpiking"
    assert gt.class_ids == list(range(1, 21))
    c = gt.counts()
    assert c["BaseballPitch"] == 41 and c["BasketballDunk"] == 488 and c["PoleVault"] == 399
    assert gt.video[0] == "video_test_0000324" and tuple(gt.segments[0]) == (49.2, 53.5)


def test_thumos14_val_and_subset_names(refdata):
    gt = load_temporal_gt(refdata / "thumos14" / "annotation_val", subset="validation")
    assert gt.subset == "val" and len(gt) > 0 and len(gt.classes) == 20
    with pytest.raises(InputError, match="no files for subset 'training'"):
        load_temporal_gt(refdata.joinpath(*TH14_TEST), subset="training")


def test_ground_truth_writers_round_trip(refdata, tmp_path):
    gt = load_temporal_gt(refdata.joinpath(*TH14_TEST))
    write_activitynet_gt(gt, tmp_path / "gt.json")
    j = read_activitynet_gt(tmp_path / "gt.json")
    assert j.classes == gt.classes and len(j) == len(gt) and len(j.amb_video) == 99
    assert sorted(map(tuple, j.segments.tolist())) == sorted(map(tuple, gt.segments.tolist()))
    write_thumos14_gt(j, tmp_path / "ann", subset="test")
    t = load_temporal_gt(tmp_path / "ann")
    assert t.counts() == gt.counts() and len(t.amb_video) == 99


def test_activitynet_json_and_synthetic_folder(tmp_path):
    db = {
        "database": {
            "v1": {"subset": "validation", "duration": 10.0, "fps": 25.0, "num_frames": 250,
                   "annotations": [{"segment": [1, 2], "label": "jump"}]},
            "v2": {"subset": "training", "annotations": [{"segment": [3, 4], "label": "run"}]},
            "v3": {"subset": "validation", "annotations": []},
        },
        "taxonomy": ["run", "jump"],
    }
    (tmp_path / "gt.json").write_text(json.dumps(db))
    with pytest.raises(InputError, match="several subsets"):
        load_temporal_gt(tmp_path)
    gt = load_temporal_gt(tmp_path, subset="validation")  # DIR -> DIR/gt.json
    assert gt.classes == ["run", "jump"] and gt.label.tolist() == [1]
    assert gt.videos == ["v1", "v3"] and gt.video_info["v1"]["fps"] == 25.0
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_temporal_gt(tmp_path / "bad.json")
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "detclasslist.txt").write_text("1 run\n2 jump\n")
    (ann / "run_validation.txt").write_text("v1 1.0 2.0\n")
    (tmp_path / "gt.json").unlink()
    g2 = load_temporal_gt(tmp_path)  # DIR -> DIR/annotations
    assert g2.format == "thumos14" and len(g2) == 1 and g2.warnings  # jump's file is missing
    (ann / "run_validation.txt").write_text("v1 1.0\n")
    with pytest.raises(InputError, match="line 1"):
        load_temporal_gt(ann)


# -- golden numbers from the official scorers -------------------------------------------
def _detections(name):
    return read_predictions("txt", [str(GOLDEN / f"th14_dets_{name}.txt")])


@pytest.mark.parametrize("name", ["unique", "ties", "sparse"])
def test_thumos14_scorer_golden(refdata, name):
    gold = json.loads((GOLDEN / "thumos14_scorer.json").read_text())
    gt = load_temporal_gt(refdata.joinpath(*TH14_TEST))
    res = evaluate_detections(_detections(name), gt, "thumos14", gold["thresholds"])
    ref = gold["sets"][name]
    for k, t in enumerate(gold["thresholds"]):
        key = f"{t:.4g}"
        assert res["mAP"][key] == pytest.approx(ref["mAP"][k], abs=1e-4)
        for c in gt.classes:
            assert res["AP"][c][key] == pytest.approx(ref["AP"][c][k], abs=1e-4), (c, t)


def _tie_order_as_scorer(gold_set, pred, gt) -> bool:
    """Whether numpy here orders each class's tied scores as it did for the scorer."""
    cid = {i: k for k, i in enumerate(gt.class_ids)}
    lab = np.array([cid.get(int(i), -1) for i in pred.label_index])
    for k, c in enumerate(gt.classes):
        order = np.ascontiguousarray(pred.score[lab == k].argsort()[::-1])
        if hashlib.sha1(order.tobytes()).hexdigest()[:16] != gold_set["argsort_sha1"][c]:
            return False
    return True


@pytest.mark.parametrize("name", ["unique", "ties", "sparse"])
@pytest.mark.parametrize("which", ["anet", "th14"])
def test_activitynet_scorer_golden(refdata, name, which):
    gold = json.loads((GOLDEN / "activitynet_scorer.json").read_text())["sets"][name][which]
    gt = load_temporal_gt(refdata.joinpath(*TH14_TEST))
    pred = _detections(name)
    if name != "unique" and not _tie_order_as_scorer(gold, pred, gt):
        pytest.skip("this numpy orders tied scores differently from the one the golden run used")
    res = evaluate_detections(pred, gt, "activitynet", gold["thresholds"])
    for k, t in enumerate(gold["thresholds"]):
        key = f"{t:.4g}"
        assert res["mAP"][key] == pytest.approx(gold["mAP"][k], abs=1e-4)
        for c in gt.classes:
            assert res["AP"][c][key] == pytest.approx(gold["AP"][c][k], abs=1e-4), (c, t)


def test_activitynet_default_thresholds_are_the_scorers():
    gold = json.loads((GOLDEN / "activitynet_scorer.json").read_text())["sets"]["unique"]["anet"]
    assert ACTIVITYNET_TIOU.tolist() == gold["thresholds"]


@pytest.mark.parametrize("name,budget", [("unique", "100"), ("unique", "5"), ("sparse", "100")])
def test_activitynet_proposal_scorer_golden(refdata, name, budget):
    gold = json.loads((GOLDEN / "activitynet_proposals.json").read_text())["sets"][name][budget]
    gt = load_temporal_gt(refdata.joinpath(*TH14_TEST))
    pred = _detections(name)
    known = np.isin(pred.label_index, gt.class_ids)  # as the golden run: unknown classes dropped
    pred.video, pred.segments, pred.score = pred.video[known], pred.segments[known], pred.score[known]
    pred.label_index = pred.label_index[known]
    # ActivityNet's ground truth JSON has no Ambiguous segments
    gt.amb_video, gt.amb_segments = gt.amb_video[:0], gt.amb_segments[:0]
    res = evaluate_proposals(pred, gt, None, float(budget))
    np.testing.assert_allclose(res["curve"]["AR"], gold["average_recall"], atol=1e-4)
    np.testing.assert_allclose(res["curve"]["AN"], gold["AN"], atol=1e-4)
    assert res["AUC"] == pytest.approx(gold["AUC"], abs=1e-4)
    np.testing.assert_allclose(list(res["AR_per_tiou_at_max"].values()), gold["recall_at_max"], atol=1e-4)


# -- frame level ----------------------------------------------------------------------------
def test_frame_ap_by_hand():
    s = np.array([[0.9], [0.8], [0.7], [0.6]])
    y = np.array([[1], [0], [1], [0]], bool)
    assert frame_average_precision(s, y)[0] == pytest.approx((1 + 2 / 3) / 2)
    # tied scores are one threshold, whatever their order: precision .5 at recall 1
    assert frame_average_precision(np.array([[.5], [.5]]), np.array([[0], [1]], bool))[0] == 0.5
    assert np.isnan(frame_average_precision(s, np.zeros((4, 1), bool))[0])


def test_rasterize_by_hand():
    # 10 fps: frame t at t/10 s; [0.2, 0.5) covers frames 2, 3, 4
    r = rasterize(8, 10.0, np.array([[0.2, 0.5]]), np.array([1]), 2)
    assert np.flatnonzero(r[:, 1]).tolist() == [2, 3, 4] and not r[:, 0].any()
