"""Optical flow: both methods recover a known translation; stacks are shaped and clamped."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidseg_cli.video.flow import FlowComputer, flow_stack, normalize_flow, stack_pairs


def _textured_pair(dx: int, dy: int):
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (96, 128), dtype=np.uint8), (5, 5), 1.5)
    rgb = np.repeat(base[:, :, None], 3, axis=2)
    moved = np.roll(np.roll(rgb, dy, axis=0), dx, axis=1)
    return rgb, moved


@pytest.mark.parametrize("method", ["tvl1", "farneback"])
def test_flow_recovers_translation(method):
    a, b = _textured_pair(2, -1)
    flow = FlowComputer(method)(a, b)
    inner = flow[16:-16, 16:-16]  # rolled borders wrap around: ignore them
    assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.15)
    assert np.median(inner[..., 1]) == pytest.approx(-1.0, abs=0.15)


def test_normalize_clips_to_bound():
    f = np.array([[[-40.0, 10.0], [5.0, 25.0]]], np.float32)
    np.testing.assert_allclose(normalize_flow(f, 20), [[[-1, 0.5], [0.25, 1]]])


def test_stack_pairs_centred_and_clamped():
    assert stack_pairs(10, 100) == [(8, 9), (9, 10), (10, 11), (11, 12), (12, 13)]
    assert stack_pairs(0, 100)[0] == (0, 1)
    assert stack_pairs(99, 100)[-1] == (98, 99)
    assert stack_pairs(1, 3) == [(0, 1), (1, 2), (1, 2), (1, 2), (1, 2)]
    with pytest.raises(ValueError):
        stack_pairs(0, 1)


def test_flow_stack_layout():
    a, b = _textured_pair(3, 0)
    frames = np.stack([a, b, a, b, a, b, a])
    st = flow_stack(frames, 3, FlowComputer("farneback"), length=5)
    assert st.shape == (10, 96, 128) and st.dtype == np.float32
    # Pair (1,2) moves by -3 px in x, pair (2,3) by +3: channels x0,y0,x1,y1,...
    assert np.median(st[0, 16:-16, 16:-16]) == pytest.approx(-3 / 20, abs=0.02)
    assert np.median(st[2, 16:-16, 16:-16]) == pytest.approx(3 / 20, abs=0.02)
