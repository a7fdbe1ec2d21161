"""The initial segmentation B_o from static or motion saliency."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.saliency import initial_mask, motion_saliency, static_saliency
from vidseg_cli.stages.superpixels import SuperpixelParams, compute_superpixels, node_masks

H, W, T, R = 72, 96, 5, 14


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def jumping_disc():
    """A red disc on grey noise, in a new place in every frame."""
    rng = np.random.default_rng(0)
    frames = (128 + rng.normal(0, 8, (T, H, W, 3))).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:H, :W]
    truth = np.zeros((T, H, W), bool)
    for t in range(T):
        truth[t] = (ys - H // 2) ** 2 + (xs - 16 - 16 * t) ** 2 < R**2
        frames[t][truth[t]] = (220, 30, 30)
    return frames, truth, compute_superpixels(frames, SuperpixelParams(count=150))


@pytest.mark.parametrize("mode", ["static", "motion"])
def test_the_disc_is_salient(jumping_disc, mode):
    frames, truth, sp = jumping_disc
    mask = initial_mask(sp, frames, mode)
    assert mask.shape == (sp.num_nodes,) and mask.dtype == bool
    assert iou(node_masks(sp, mask, (H, W)), truth) > 0.5


def test_maps():
    frames = np.full((3, 20, 30, 3), 100, np.uint8)
    frames[1, 5:10, 5:10] = 200
    sal = static_saliency(frames)
    assert sal.shape == (3, 20, 30) and sal.dtype == np.float32
    assert sal.min() >= 0 and sal.max() <= 1
    motion = motion_saliency(frames)
    assert motion[0].max() == 0 and motion[1, 5:10, 5:10].min() > 50


def test_still_flat_video_has_no_motion_foreground(jumping_disc):
    frames, _, _ = jumping_disc
    still = np.repeat(frames[:1], 3, axis=0)
    sp = compute_superpixels(still, SuperpixelParams(count=100))
    assert not initial_mask(sp, still, "motion").any()


def test_rejects_bad_input(jumping_disc):
    frames, _, sp = jumping_disc
    with pytest.raises(ValueError, match="saliency mode"):
        initial_mask(sp, frames, "spectral")
    with pytest.raises(ValueError, match="working_frames"):
        initial_mask(sp, frames[:, :40], "static")
