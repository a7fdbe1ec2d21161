"""Segment-tube's temporal fusion (§2.1, Eq. 1-4) worked by hand: α_t on hand-made windows,
the strict γ, mean against sum for the video class, no positive clip, uncovered frames; the
detection ladder by hand and against a brute force."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.segment_tube_temporal import (
    GAMMA,
    LADDER,
    clip_windows,
    ladder_detections,
    localize_clips,
)

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


def test_ladder_adds_the_runs_of_lower_thresholds_and_drops_near_duplicates_by_hand():
    alpha = np.array([0.1, 0.35, 0.45, 0.7, 0.7, 0.45, 0.1, 0.35, 0.1, 0.1])
    segs, scores = ladder_detections(alpha, 1, (0.6, 0.4, 0.3), nms_iou=0.7)
    # 0.6: [3, 5) mean 0.7; 0.4: [2, 6) 0.575 (tIoU 0.5 with [3, 5): kept);
    # 0.3: [1, 6) 0.53 (tIoU 0.8 with [2, 6): dropped) and [7, 8) 0.35
    assert segs.tolist() == [[3, 5], [2, 6], [7, 8]]
    np.testing.assert_allclose(scores, [0.7, 0.575, 0.35])
    segs, _ = ladder_detections(alpha, 1, (0.6, 0.4, 0.3), nms_iou=0.8)  # 0.8 is not above 0.8
    assert segs.tolist() == [[3, 5], [2, 6], [1, 6], [7, 8]]
    assert ladder_detections(alpha, 0, (0.3,))[0].shape == (0, 2)  # no video class, no detection


def _brute_ladder(alpha, thresholds, nms_iou):
    found = set()
    for t in thresholds:
        start = None
        for i, a in enumerate([*alpha, -1.0]):
            if a > t and start is None:
                start = i
            elif a <= t and start is not None:
                found.add((start, i))
                start = None
    cands = sorted(((float(np.mean(alpha[s:e])), s, e) for s, e in found), key=lambda c: -c[0])
    kept = []
    for score, s, e in cands:  # greedy NMS, ties in no particular order: compare as sets
        inter = [max(0, min(e, e2) - max(s, s2)) for _, s2, e2 in kept]
        union = [max(e, e2) - min(s, s2) for _, s2, e2 in kept]
        if all(i / u <= nms_iou for i, u in zip(inter, union)):
            kept.append((score, s, e))
    return kept


@pytest.mark.parametrize("seed", range(30))
def test_ladder_equals_brute_force_on_random_alpha(seed):
    rng = np.random.default_rng(seed)
    alpha = np.round(rng.random(int(rng.integers(1, 40))), 1)  # rounded: runs at many thresholds
    thresholds = tuple(rng.choice([0.2, 0.3, 0.4, 0.5, 0.6, 0.7], int(rng.integers(1, 5)), replace=False))
    nms_iou = float(rng.choice([0.3, 0.5, 0.7, 1.0]))
    segs, scores = ladder_detections(alpha, 2, thresholds, nms_iou)
    want = _brute_ladder(alpha, thresholds, nms_iou)
    if len(set(np.round([w[0] for w in want], 12))) == len(want):  # no tied scores: same order
        assert segs.tolist() == [[s, e] for _, s, e in want]
        np.testing.assert_allclose(scores, [w[0] for w in want])
    assert (np.diff(scores) <= 0).all()


def test_localize_with_a_ladder_keeps_the_labels_and_adds_detections():
    windows = [[0, 16], [4, 20], [8, 24]]
    p_cla = [[0.2, 0.8, 0.0]] * 3
    paper = localize_clips(windows, [ACTION] * 3, p_cla, num_frames=24)
    ladder = localize_clips(windows, [ACTION] * 3, p_cla, num_frames=24, ladder=LADDER)
    # every covering clip is class 1 at 0.8: α = 0.8 everywhere, nothing below γ to add
    assert np.array_equal(paper.labels, ladder.labels) and paper.segments.tolist() == [[0, 24]]
    assert ladder.segments.tolist() == [[0, 24]]
    p_cla = [[0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]  # the middle clip: background
    paper = localize_clips(windows, [ACTION] * 3, p_cla, num_frames=24)
    ladder = localize_clips(windows, [ACTION] * 3, p_cla, num_frames=24, ladder=LADDER)
    # α: 0.8 on 0..3, 0.4 on 4..7, 1.6 / 3 on 8..15, 0.4 on 16..19, 0.8 on 20..23
    assert np.array_equal(paper.labels, ladder.labels)
    assert paper.segments.tolist() == [[0, 4], [20, 24]]
    # 0.5 adds [8, 16]; 0.3 and 0.2 add [0, 24] (mean 13.8667 / 24); 0.4 adds nothing
    assert ladder.segments.tolist() == [[0, 4], [20, 24], [0, 24], [8, 16]]
    np.testing.assert_allclose(ladder.segment_scores, [0.8, 0.8, (3.2 + 1.6 + 12.8 / 3 + 1.6 + 3.2) / 24, 1.6 / 3])
    assert (ladder.segment_labels == 1).all()
