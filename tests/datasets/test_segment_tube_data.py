"""Segment-tube's window labels by coverage (the S-CNN tIoU rule of "[13]" makes almost no
16/32-frame positives), and the proposal targets."""

from __future__ import annotations

import numpy as np

from vidseg_cli.datasets.scnn_data import label_windows
from vidseg_cli.datasets.segment_tube_data import coverage_labels, proposal_targets
from vidseg_cli.stages.segment_tube_temporal import clip_windows


def test_a_16_frame_window_inside_a_40_frame_action_is_positive():
    window, action = np.array([[20, 36]]), np.array([[10, 50]])
    labels, cover = coverage_labels(window, action, [3])
    assert labels.tolist() == [3] and cover.tolist() == [1.0]
    assert label_windows(window, action, np.array([3]))[0].tolist() == [-1]  # tIoU 0.4: ignored


def test_coverage_thresholds_background_and_ignored():
    gt = np.array([[100, 200]])
    windows = np.array([
        [88, 104],  # 4/16 = 0.25 inside: background
        [92, 108],  # 0.5: ignored
        [96, 112],  # 0.75: positive
        [184, 216],  # 16/32 = 0.5: ignored
        [0, 16],  # outside: background
        [106, 110],  # inside: positive
    ])
    labels, cover = coverage_labels(windows, gt, [2])
    assert labels.tolist() == [0, -1, 2, -1, 0, 2]
    np.testing.assert_allclose(cover, [0.25, 0.5, 0.75, 0.5, 0.0, 1.0])
    assert proposal_targets(labels).tolist() == [0, -1, 1, -1, 0, 1]


def test_instances_of_one_class_count_together_and_actions_together_for_background():
    # Two touching instances of class 1: a window across both is class 1.
    labels, _ = coverage_labels([[8, 24]], [[0, 16], [16, 40]], [1, 1])
    assert labels.tolist() == [1]
    # 2/16 + 3/16 of two classes: 0.31 of the window is action, so not background.
    labels, cover = coverage_labels([[0, 16]], [[0, 2], [13, 16]], [1, 2])
    assert labels.tolist() == [-1] and cover[0] == 5 / 16
    # Overlapping instances: the class covering more of the window wins.
    labels, cover = coverage_labels([[0, 16]], [[0, 16], [0, 13]], [2, 1])
    assert labels.tolist() == [2] and cover[0] == 1.0


def test_a_trimmed_video_has_every_window_positive_and_no_gt_is_all_background():
    win = clip_windows(70)
    labels, _ = coverage_labels(win, [[0, 70]], [4])
    assert len(win) == 14 + 5 and (labels == 4).all()
    labels, cover = coverage_labels(win, np.zeros((0, 2)), np.zeros(0))
    assert (labels == 0).all() and not cover.any()
    labels, cover = coverage_labels(np.zeros((0, 2)), [[0, 70]], [4])
    assert labels.shape == cover.shape == (0,)
