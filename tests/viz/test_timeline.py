"""Timelines against hand-made segments: each rectangle where its segment is."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_hex

from vidseg_cli.viz.colors import hex_color
from vidseg_cli.viz.timeline import Timeline, Track, best_tiou, draw, lanes_of, save, windows


def _rects(fig):
    out = {}
    for ax in fig.axes:
        for p in ax.patches:
            if p.get_gid():
                out[p.get_gid()] = (ax, p)
    return out


def _timeline():
    pred = Track(np.array([[1.0, 4.0], [10.0, 12.0], [20.0, 25.0]]),
                 np.array(["jump", "run", "jump"]), np.array([0.9, 0.4, 0.2]))
    gt = Track(np.array([[1.0, 5.0], [30.0, 33.0]]), np.array(["jump", "run"]))
    return Timeline("v", 40.0, pred=pred, gt=gt)


def test_each_segment_is_a_rectangle_over_its_interval_in_its_lane_and_colour():
    tl = _timeline()
    fig = draw(tl)
    rects = _rects(fig)
    lanes = lanes_of(tl)
    assert lanes == [("jump", "pred"), ("jump", "gt"), ("run", "pred"), ("run", "gt")]
    cases = {"pred:jump:0": (1, 4, 0, 0.15 + 0.85 * 0.9), "pred:run:1": (10, 12, 2, 0.15 + 0.85 * 0.4),
             "pred:jump:2": (20, 25, 0, 0.15 + 0.85 * 0.2), "gt:jump:0": (1, 5, 1, 1.0),
             "gt:run:1": (30, 33, 3, 1.0)}
    assert set(rects) == set(cases)
    for gid, (s, e, lane, alpha) in cases.items():
        _, r = rects[gid]
        assert r.get_x() == s and np.isclose(r.get_width(), e - s)
        assert lane < r.get_y() < lane + 1 and r.get_y() + r.get_height() < lane + 1
        assert to_hex(r.get_facecolor(), keep_alpha=False) == hex_color(gid.split(":")[1])
        assert np.isclose(r.get_alpha(), alpha)


def test_matched_detections_carry_their_tiou():
    tl = _timeline()
    assert np.allclose(best_tiou(tl.pred, tl.gt), [3 / 4, 0.0, 0.0])
    texts = {t.get_gid(): t.get_text() for ax in draw(tl).axes for t in ax.texts if t.get_gid()}
    assert texts == {"tiou:jump:0": "0.75"}


def test_a_two_hour_video_is_cut_into_rows_that_keep_a_short_action_visible():
    rows = windows(7200.0)
    assert len(rows) == 24 and rows[0] == (0.0, 300.0) and rows[-1][1] == 7200.0
    pred = Track(np.array([[3601.0, 3603.0]]), np.array(["jump"]), np.array([1.0]))
    fig = draw(Timeline("long", 7200.0, pred=pred))
    (ax, r), = _rects(fig).values()
    assert ax.get_xlim() == (3600.0, 3900.0)  # in the 13th row of 5 minutes
    # two seconds of a 300-second row on a 12-inch figure: several pixels wide at 110 dpi
    x0, x1 = ax.transData.transform([(3601.0, 0), (3603.0, 0)])[:, 0]
    assert x1 - x0 > 5
    assert windows(500.0) == [(0.0, 500.0)]
    assert len(windows(500.0, window=60)) == 9


def test_an_empty_prediction_is_an_empty_timeline(tmp_path):
    tl = Timeline("v", 10.0, pred=Track(np.zeros((0, 2)), np.array([], str), np.zeros(0)),
                  note="no detections")
    fig = draw(tl)
    assert not _rects(fig)
    save(fig, tmp_path / "t.svg", tmp_path / "t.png")
    assert "no segments" in (tmp_path / "t.svg").read_text()
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_keeps_the_rectangles_ids(tmp_path):
    save(draw(_timeline()), tmp_path / "t.svg", tmp_path / "t.png")
    svg = (tmp_path / "t.svg").read_text()
    for gid in ("pred:jump:0", "gt:run:1", "tiou:jump:0"):
        assert f'id="{gid}"' in svg
