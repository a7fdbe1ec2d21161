"""Overlays against hand-made masks: the right pixels in the right colour."""

from __future__ import annotations

import numpy as np

from vidseg_cli.viz.colors import class_color
from vidseg_cli.viz.overlay import (
    ALPHA,
    boundary,
    color_table,
    draw_contours,
    overlay_labels,
    overlay_probs,
)

NAMES = ["background", "jump", "run"]


def _frame(h=8, w=10, v=100):
    return np.full((h, w, 3), v, np.uint8)


def test_labels_colour_exactly_their_pixels():
    frame = _frame()
    labels = np.zeros((8, 10), np.uint8)
    labels[2:5, 3:7] = 1  # jump
    labels[6:8, 0:2] = 2  # run
    out = overlay_labels(frame, labels, color_table(NAMES))
    jump, run = np.array(class_color("jump")), np.array(class_color("run"))
    want_jump = np.rint(100 * (1 - ALPHA) + jump * ALPHA)
    want_run = np.rint(100 * (1 - ALPHA) + run * ALPHA)
    assert (out[2:5, 3:7] == want_jump).all()
    assert (out[6:8, 0:2] == want_run).all()
    untouched = labels == 0
    assert (out[untouched] == 100).all()


def test_a_class_past_the_names_is_left_undrawn():
    labels = np.full((8, 10), 7, np.uint8)
    assert (overlay_labels(_frame(), labels, color_table(NAMES)) == 100).all()


def test_posteriors_draw_the_top_class_with_its_probability_as_opacity():
    probs = np.zeros((3, 4, 4), np.float32)
    probs[0] = 1.0  # background everywhere...
    probs[:, 1, 1] = [0.1, 0.9, 0.0]  # ...but a confident jump
    probs[:, 2, 2] = [0.3, 0.0, 0.7]  # and a less sure run
    out = overlay_probs(_frame(4, 4), probs, color_table(NAMES))
    jump, run = np.array(class_color("jump")), np.array(class_color("run"))
    a1, a2 = np.float32(ALPHA) * np.float32(0.9), np.float32(ALPHA) * np.float32(0.7)
    assert (out[1, 1] == np.rint(100 * (1 - a1) + jump * a1)).all()
    assert (out[2, 2] == np.rint(100 * (1 - a2) + run * a2)).all()
    mask = np.ones((4, 4), bool)
    mask[1, 1] = mask[2, 2] = False
    assert (out[mask] == 100).all()


def test_ground_truth_is_a_one_pixel_outline_in_its_colour():
    gt = np.zeros((9, 9), np.uint8)
    gt[2:7, 2:7] = 2  # a 5x5 run square
    edge = boundary(gt)
    expected = np.zeros((9, 9), bool)
    expected[2:7, 2:7] = True
    expected[3:6, 3:6] = False  # the inside stays
    assert (edge == expected).all()
    img = _frame(9, 9)
    out = draw_contours(img, gt, color_table(NAMES))
    assert (out[edge] == class_color("run")).all()
    assert (out[~edge] == 100).all()
    assert (img == 100).all()  # the input is not changed
