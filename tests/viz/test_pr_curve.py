"""Precision-recall curves: by hand, and their area equal to evaluate's AP."""

from __future__ import annotations

import numpy as np

from vidseg_cli.metrics.temporal import average_precision_activitynet, interpolated_ap
from vidseg_cli.viz.pr_curve import pr_curve


def test_a_hand_made_ranking():
    gt_v = np.array(["a", "a", "b"])
    gt_s = np.array([[0.0, 10.0], [20.0, 30.0], [0.0, 5.0]])
    det_v = np.array(["a", "a", "b", "a"])
    det_s = np.array([[0.0, 9.0], [1.0, 10.0], [0.0, 5.0], [21.0, 30.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    c = pr_curve(det_v, det_s, scores, gt_v, gt_s, 0.5)
    # 0.9 hits a's first, 0.8 finds it taken (a duplicate), 0.7 hits b, 0.6 hits a's second
    assert np.allclose(c.precision, [1, 1 / 2, 2 / 3, 3 / 4])
    assert np.allclose(c.recall, [1 / 3, 1 / 3, 2 / 3, 1])
    assert c.num_gt == 3


def test_its_interpolated_area_is_the_activitynet_ap():
    rng = np.random.default_rng(3)
    gt_v = rng.integers(0, 4, 30)
    start = rng.uniform(0, 100, 30)
    gt_s = np.stack([start, start + rng.uniform(2, 20, 30)], 1)
    pick = rng.integers(0, 30, 60)
    det_s = gt_s[pick] + rng.normal(0, 3, (60, 2))
    det_s[:, 1] = np.maximum(det_s[:, 1], det_s[:, 0] + 0.5)
    det_v = gt_v[pick]
    scores = rng.permutation(60) / 60.0  # no ties
    for thr in (0.3, 0.5, 0.7):
        c = pr_curve(det_v.astype(str), det_s, scores, gt_v.astype(str), gt_s, thr)
        ref = average_precision_activitynet(gt_v, gt_s, np.zeros(30, int), det_v, det_s,
                                            np.zeros(60, int), scores, 1, [thr])
        assert np.isclose(interpolated_ap(c.precision, c.recall), ref.ap[0, 0])


def test_the_drawn_steps_enclose_the_ap():
    rng = np.random.default_rng(5)
    gt_v = rng.integers(0, 3, 12).astype(str)
    start = rng.uniform(0, 50, 12)
    gt_s = np.stack([start, start + 10], 1)
    pick = rng.integers(0, 12, 25)
    det_s = gt_s[pick] + rng.normal(0, 4, (25, 2))
    det_s[:, 1] = np.maximum(det_s[:, 1], det_s[:, 0] + 0.5)
    c = pr_curve(gt_v[pick], det_s, rng.permutation(25) / 25.0, gt_v, gt_s, 0.5)
    x, y = c.steps()
    # step(where="pre"): y[i] holds on (x[i-1], x[i]]
    area = float(np.sum(np.diff(x) * y[1:]))
    assert 0 < area < 1
    assert np.isclose(area, interpolated_ap(c.precision, c.recall))
    assert np.all(np.diff(y) <= 1e-12)  # interpolated precision never rises with recall
