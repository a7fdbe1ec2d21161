"""stages/crf.py: the dense CRF of 3DFCN §3.6 with §4.2's settings, checked by closed
forms (no pairwise term, no iterations) and on a picture where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages import crf


def _two_regions(h=40, w=60):
    """An image split into a dark left and a bright right half, and its true labels."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (40, 60, 50)
    img[:, w // 2 :] = (200, 180, 190)
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2 :] = 1
    return img, truth


def test_defaults_are_the_papers():
    p = crf.CRFParams()
    assert (p.w1, p.theta_alpha, p.theta_beta, p.w2, p.theta_gamma, p.iterations) == (10, 100, 10, 3, 3, 10)


@pytest.mark.parametrize("kw", [{"theta_alpha": 0}, {"w1": -1}, {"iterations": -1}])
def test_bad_params(kw):
    with pytest.raises(ValueError):
        crf.CRFParams(**kw)


def test_without_iterations_or_pairwise_terms_the_marginals_are_the_scores():
    """Mean field starts from Q = softmax(-unary) = P; with no pairwise term it stays."""
    rng = np.random.default_rng(0)
    img, _ = _two_regions()
    p = rng.dirichlet(np.ones(3), size=img.shape[:2]).transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_allclose(crf.refine_frame(img, p, crf.CRFParams(iterations=0)), p, atol=1e-5)
    np.testing.assert_allclose(crf.refine_frame(img, p, crf.CRFParams(w1=0, w2=0)), p, atol=1e-5)


def test_crf_cleans_noisy_scores_along_image_edges():
    rng = np.random.default_rng(1)
    img, truth = _two_regions()
    fg = np.where(truth == 1, 0.65, 0.35) + rng.normal(0, 0.25, truth.shape)
    fg = np.clip(fg, 0.02, 0.98)
    p = np.stack([1 - fg, fg]).astype(np.float32)  # 2 x H x W
    before = (p.argmax(0) == truth).mean()
    marg = crf.refine_frame(img, p)
    after = (marg.argmax(0) == truth).mean()
    assert before < 0.9 and after > 0.99
    np.testing.assert_allclose(marg.sum(0), 1, atol=1e-5)


def test_upsample_keeps_distributions_and_centres():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4), size=(3, 5)).transpose(2, 0, 1).astype(np.float32)  # 4 x 3 x 5
    up = crf.upsample_to(p, 8, (22, 37))
    assert up.shape == (4, 22, 37)
    np.testing.assert_allclose(up.sum(0), 1, atol=1e-5)
    # Cell (i, j) is centred on pixel (8i + 3.5, 8j + 3.5): pixels 3 and 4 straddle it.
    np.testing.assert_allclose((up[:, 3, 3] + up[:, 4, 4]) / 2, p[:, 0, 0], atol=0.05)
    np.testing.assert_array_equal(crf.upsample_to(p, 1, (3, 5)), p)
    with pytest.raises(ValueError):
        crf.upsample_to(p, 1, (4, 5))


def test_parallel_frames_equal_serial_and_keep_order():
    rng = np.random.default_rng(3)
    img, truth = _two_regions(24, 32)
    frames = [np.roll(img, 3 * i, axis=1) for i in range(4)]
    probs = [rng.dirichlet(np.ones(2), size=(6, 8)).transpose(2, 0, 1).astype(np.float32) for _ in range(4)]
    serial = list(crf.refine_frames(frames, probs, stride=4, keep_probs=True))
    par = list(crf.refine_frames(frames, probs, stride=4, keep_probs=True, jobs=2))
    for (la, ma), (lb, mb) in zip(serial, par):
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(ma, mb)
    assert serial[0][0].shape == (24, 32) and serial[0][0].dtype == np.uint8


def test_image_size_must_match():
    with pytest.raises(ValueError, match="expected"):
        crf.refine_frame(np.zeros((4, 4, 3), np.uint8), np.full((2, 5, 4), 0.5, np.float32))
