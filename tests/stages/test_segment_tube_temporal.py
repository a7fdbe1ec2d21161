"""Segment-tube's temporal fusion (§2.1, Eq. 1-4) worked by hand: α_t on hand-made windows,
the strict γ, mean against sum for the video class, no positive clip, uncovered frames."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.segment_tube_temporal import GAMMA, clip_windows, localize_clips

ACTION, BACKGROUND = [0.2, 0.8], [0.6, 0.4]  # p^pro = [p(0), p(1)]


def test_clip_windows_are_16_and_32_frames_with_75_percent_overlap():
    w = clip_windows(40)
    assert w[:7].tolist() == [[s, s + 16] for s in range(0, 25, 4)]
    assert w[7:].tolist() == [[0, 32], [8, 40]]
    assert clip_windows(15).shape == (0, 2)


def test_alpha_counts_clips_of_k_prime_over_every_covering_window_and_zero_outside():
    windows = [[0, 16], [4, 20], [8, 24]]
    p_pro = [ACTION, BACKGROUND, ACTION]
    p_cla = [[0.1, 0.8, 0.1],  # class 1, v = 0.8
             [0.1, 0.1, 0.8],  # not an action clip (Eq. 1): no l^spe
             [0.2, 0.1, 0.7]]  # class 2, v = 0.7
    r = localize_clips(windows, p_pro, p_cla, num_frames=28)
    assert r.flag.tolist() == [1, 0, 1] and r.clip_label.tolist() == [1, -1, 2]
    np.testing.assert_allclose(r.clip_score, [0.8, 0.0, 0.7])
    assert r.video_class == 1  # mean 0.8 against 0.7
    want = np.zeros(28)
    want[0:4] = 0.8  # w0 alone
    want[4:8] = 0.8 / 2  # w0, w1
    want[8:16] = 0.8 / 3  # w0, w1, w2 (w2 is class 2: denominator only)
    # 16..23 covered by w1, w2 only: 0; 24..27 covered by none: 0
    np.testing.assert_allclose(r.alpha, want, rtol=0, atol=1e-15)
    assert r.labels.tolist() == [1] * 4 + [0] * 24
    assert r.segments.tolist() == [[0, 4]] and r.segment_labels.tolist() == [1]
    np.testing.assert_allclose(r.segment_scores, [0.8])


def test_alpha_exactly_gamma_is_background():
    windows = [[0, 16], [8, 24]]
    p_cla = [[0.4, 0.6, 0.0], [0.4, 0.6, 0.0]]
    r = localize_clips(windows, [ACTION, ACTION], p_cla, num_frames=24)
    assert GAMMA == 0.6 and r.video_class == 1
    assert (r.alpha == 0.6).all()  # 0.6 / 1 and (0.6 + 0.6) / 2, exactly
    assert not r.labels.any() and r.segments.shape == (0, 2) and r.segment_scores.shape == (0,)
    r = localize_clips(windows, [ACTION, ACTION], p_cla, num_frames=24, gamma=0.599)
    assert r.labels.tolist() == [1] * 24 and r.segments.tolist() == [[0, 24]]
    np.testing.assert_allclose(r.segment_scores, [0.6])


def test_mean_and_sum_choose_different_video_classes():
    windows = [[0, 16], [4, 20], [8, 24], [12, 28]]
    p_cla = [[0.3, 0.5, 0.2]] * 3 + [[0.05, 0.05, 0.9]]  # class 1: 3 x 0.5; class 2: 1 x 0.9
    p_pro = [ACTION] * 4
    mean = localize_clips(windows, p_pro, p_cla, num_frames=28, video_class="mean")
    total = localize_clips(windows, p_pro, p_cla, num_frames=28, video_class="sum")
    assert mean.video_class == 2 and total.video_class == 1
    # k' = 2: frames 24..27 are covered by the class-2 clip alone, α = 0.9
    assert mean.segments.tolist() == [[24, 28]] and mean.segment_labels.tolist() == [2]
    assert not total.labels.any()  # class 1's α never passes 0.6 (0.5 at most)
    with pytest.raises(ValueError, match="mean, sum"):
        localize_clips(windows, p_pro, p_cla, num_frames=28, video_class="max")


@pytest.mark.parametrize("case", ["no action clip", "only background labels", "no window"])
def test_no_positive_clip_gives_empty_outputs_and_all_zero_labels(case):
    windows, p_pro, p_cla = [[0, 16], [8, 24]], [ACTION, ACTION], [[0.7, 0.2, 0.1]] * 2
    if case == "no action clip":
        p_pro = [[0.5, 0.5], BACKGROUND]  # a tie is not an action (Eq. 1 is strict)
        p_cla = [[0.1, 0.8, 0.1]] * 2
    elif case == "no window":
        windows, p_pro, p_cla = np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 3))
    r = localize_clips(windows, p_pro, p_cla, num_frames=24)
    assert r.video_class == 0
    assert r.labels.shape == (24,) and not r.labels.any()
    assert r.alpha.shape == (24,) and not r.alpha.any()
    assert r.segments.shape == (0, 2) and r.segment_labels.shape == (0,) and r.segment_scores.shape == (0,)


def test_windows_outside_the_video_are_refused():
    with pytest.raises(ValueError, match="inside 0..20"):
        localize_clips([[8, 24]], [ACTION], [[0.1, 0.9]], num_frames=20)
