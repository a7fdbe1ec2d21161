"""NMS, windows and grouping on hand-made cases and against brute force."""

from __future__ import annotations

import itertools

import numpy as np

from vidseg_cli.geometry import tiou
from vidseg_cli.stages.grouping import group_frames, runs_above
from vidseg_cli.stages.nms import nms, nms_per_class
from vidseg_cli.stages.windows import multiscale_windows, sample_clip_indices


def test_tiou_by_hand():
    others = np.array([[0, 10], [5, 15], [10, 20], [2, 4], [0, 0]], float)
    np.testing.assert_allclose(tiou(np.array([0, 10.0]), others), [1, 5 / 15, 0, 0.2, 0])


def test_nms_by_hand():
    seg = np.array([[0, 10], [1, 11], [20, 30], [0, 9], [21, 29]], float)
    sc = np.array([0.9, 0.8, 0.7, 0.95, 0.6])
    # 3 (0.95) suppresses 0 (IoU .9) and 1 (IoU 8/11=.73); 2 suppresses 4 (IoU .8).
    assert nms(seg, sc, 0.5).tolist() == [3, 2]
    assert nms(seg, sc, 0.85).tolist() == [3, 1, 2, 4]
    assert nms(seg, sc, 0.5, top_k=1).tolist() == [3]
    assert nms(np.zeros((0, 2)), np.zeros(0), 0.5).tolist() == []


def test_nms_ties_keep_input_order():
    seg = np.array([[0, 10], [0, 10], [50, 60]], float)
    assert nms(seg, np.array([0.5, 0.5, 0.5]), 0.4).tolist() == [0, 2]


def _brute_nms(seg, sc, th):
    """Definition: a segment is kept iff no kept segment with a higher rank overlaps it."""
    order = sorted(range(len(sc)), key=lambda i: (-sc[i], i))
    kept = []
    for i in order:
        if all(tiou(seg[i], seg[[j]])[0] <= th for j in kept):
            kept.append(i)
    return kept


def test_nms_matches_definition_on_random_cases():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = rng.integers(1, 12)
        s = rng.integers(0, 40, n)
        seg = np.stack([s, s + rng.integers(1, 20, n)], 1).astype(float)
        sc = rng.integers(0, 5, n) / 4  # many ties
        th = rng.choice([0.1, 0.3, 0.5, 0.7])
        assert nms(seg, sc, th).tolist() == _brute_nms(seg, sc, th)


def test_nms_per_class_independent():
    seg = np.array([[0, 10], [0, 10], [1, 10]], float)
    keep = nms_per_class(seg, np.array([1, 2, 1]), np.array([0.5, 0.9, 0.7]), 0.5)
    assert keep.tolist() == [1, 2]


def test_windows_scnn():
    w = multiscale_windows(64)
    lengths = w[:, 1] - w[:, 0]
    assert set(lengths.tolist()) == {16, 32, 64}
    assert (w[lengths == 16, 0] == np.arange(0, 49, 4)).all()  # stride 4 = 75% overlap
    assert (w[lengths == 32, 0] == np.arange(0, 33, 8)).all()
    assert w[lengths == 64].tolist() == [[0, 64]]
    assert multiscale_windows(15).shape == (0, 2)
    assert sample_clip_indices(0, 16).tolist() == list(range(16))
    assert sample_clip_indices(32, 64).tolist() == list(range(32, 64, 2))
    idx = sample_clip_indices(0, 512)
    assert idx[0] == 0 and idx[-1] == 480 and len(idx) == 16


def test_runs_above():
    v = np.array([0.1, 0.6, 0.7, 0.2, 0.9, 0.9])
    assert runs_above(v, 0.5).tolist() == [[1, 3], [4, 6]]
    assert runs_above(v, 0.95).tolist() == []


def test_group_frames_by_hand():
    # 10 frames, background + 1 class; the action holds frames 3..6 strongly.
    p1 = np.array([0, 0, 0.05, 0.8, 0.9, 0.9, 0.8, 0.05, 0, 0])
    probs = np.stack([1 - p1, p1], 1)
    seg, lab, sc = group_frames(probs, nms_iou=0.4)
    assert lab.tolist() == [1] * len(lab)
    # The run above 0.8 (frames 4-5, mean 0.9) outranks the run above 0.5 (3-6, mean
    # 0.85) and suppresses it (tIoU 0.5 > 0.4): mean-probability scoring favours peaks.
    assert seg[0].tolist() == [4, 6] and np.isclose(sc[0], 0.9)
    assert [3, 7] not in seg.tolist()
    # Every kept pair overlaps at most 0.4.
    for a, b in itertools.combinations(range(len(seg)), 2):
        assert tiou(seg[a], seg[[b]])[0] <= 0.4
