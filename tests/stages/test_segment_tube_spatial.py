"""Segment-tube's spatial round (Eq. (5)-(7)) on synthetic frames and real DAVIS and J-HMDB
frames."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_cli.stages.saliency import initial_mask
from vidseg_cli.stages.segment_tube_spatial import (
    SpatialParams,
    build_problem,
    data_term,
    fit_models,
    foreground_probability,
    pairwise_weights,
    segment_round,
)
from vidseg_cli.stages.superpixels import (
    SuperpixelParams,
    compute_superpixels,
    node_masks,
    pixel_means,
    working_frames,
)

H, W, T, R = 96, 128, 3, 22  # the disc video: frame size, length, disc radius


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def quantisation(problem) -> float:
    """How far the integer cut may be from the true minimum (stages/graphcut.py)."""
    return (len(problem.nodes) + len(problem.edges)) / 2000.0


@pytest.fixture(scope="module")
def disc():
    """A red disc moving right over grey noise; its masks; its bounding squares."""
    rng = np.random.default_rng(0)
    frames = (128 + rng.normal(0, 12, (T, H, W, 3))).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:H, :W]
    truth = np.zeros((T, H, W), bool)
    square = np.zeros((T, H, W), bool)
    for t in range(T):
        cx = W // 2 + 3 * t
        truth[t] = (ys - H // 2) ** 2 + (xs - cx) ** 2 < R**2
        square[t, H // 2 - R : H // 2 + R + 1, cx - R : cx + R + 1] = True
        frames[t][truth[t]] = (210, 30, 30)
    sp = compute_superpixels(frames, SuperpixelParams(count=300))
    start = pixel_means(sp.labels, square.astype(np.float64), sp.num_nodes) > 0.5
    return frames, truth, sp, start


def test_disc_from_its_bounding_square_in_one_round(disc):
    _, truth, sp, start = disc
    assert iou(node_masks(sp, start, (H, W)), truth) < 0.8  # about pi / 4
    result = segment_round(sp, start, range(T))
    assert not result.skipped and result.changed > 0
    assert iou(node_masks(sp, result.labels, (H, W)), truth) > 0.9


def test_u0_and_u1_sum_to_one(disc):
    _, _, sp, start = disc
    params = SpatialParams()
    models = fit_models(sp.colour, sp.centroid, start, params)
    u_col, u_loc = foreground_probability(models, sp.colour, sp.centroid)
    for u in (u_col, u_loc):
        assert np.all((u >= 0) & (u <= 1))
    costs = data_term(models, sp.colour, sp.centroid, params)  # N x 2
    probs = np.exp(-costs)
    unclipped = (probs > params.min_prob).all(axis=1)
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose(probs[unclipped].sum(axis=1), 1.0, atol=1e-9)
    mixed = params.beta * u_col + (1 - params.beta) * u_loc
    np.testing.assert_allclose(probs[unclipped, 1], mixed[unclipped], atol=1e-9)


def test_beta_one_ignores_location(disc):
    _, _, sp, start = disc
    params = SpatialParams(beta=1.0)
    models = fit_models(sp.colour, sp.centroid, start, params)
    moved = np.random.default_rng(1).permutation(sp.centroid)
    np.testing.assert_array_equal(
        data_term(models, sp.colour, sp.centroid, params),
        data_term(models, sp.colour, moved, params),
    )
    other = SpatialParams(beta=0.5)
    assert not np.allclose(
        data_term(models, sp.colour, sp.centroid, other),
        data_term(models, sp.colour, moved, other),
    )


@pytest.mark.parametrize("pairwise", ["normalized", "literal"])
def test_the_cut_lowers_the_energy_for_fixed_models(disc, pairwise):
    _, _, sp, start = disc
    params = SpatialParams(pairwise=pairwise)
    problem = build_problem(sp, start, range(T), params)
    new = problem.solve()
    old = start[problem.nodes]
    tol = quantisation(problem)
    assert problem.energy(new) <= problem.energy(old) + tol
    rng = np.random.default_rng(2)
    for _ in range(20):  # nor does any nearby labelling do better
        flipped = new ^ (rng.random(len(new)) < 0.05)
        assert problem.energy(new) <= problem.energy(flipped) + tol


def test_pairwise_forms():
    colour = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    edges = np.array([[0, 1], [1, 2], [0, 2]])
    dist = np.array([1.0, 1.0, 2.0])
    np.testing.assert_allclose(
        pairwise_weights(colour, edges, SpatialParams(pairwise="literal")), np.exp(-dist)
    )
    normalized = pairwise_weights(colour, edges, SpatialParams(pairwise_weight=3.0))
    np.testing.assert_allclose(normalized, 3.0 * np.exp(-dist / (2 * dist.mean())))
    flat = pairwise_weights(np.zeros((3, 3)), edges, SpatialParams())
    np.testing.assert_allclose(flat, 1.0)


def test_only_the_frames_given_change(disc):
    _, _, sp, start = disc
    result = segment_round(sp, start, [0, 2])
    outside = sp.frame == 1
    np.testing.assert_array_equal(result.labels[outside], start[outside])
    assert result.nodes == int((~outside).sum())
    assert result.energy_after <= result.energy_before


def test_blocks_cut_frames_apart(disc):
    _, _, sp, start = disc
    whole = build_problem(sp, start, range(T), SpatialParams())
    per_frame = build_problem(sp, start, range(T), SpatialParams(block_frames=1))
    assert len(per_frame.edges) == len(sp.spatial_edges) < len(whole.edges)
    assert (per_frame.block[per_frame.edges[:, 0]] == per_frame.block[per_frame.edges[:, 1]]).all()
    new = per_frame.solve()
    assert per_frame.energy(new) <= per_frame.energy(start) + quantisation(per_frame)


def test_too_few_nodes_on_a_side_keeps_b(disc):
    _, _, sp, _ = disc
    labels = np.zeros(sp.num_nodes, bool)
    labels[:5] = True
    result = segment_round(sp, labels, range(T))
    assert result.skipped and result.changed == 0
    np.testing.assert_array_equal(result.labels, labels)


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="beta"):
        SpatialParams(beta=1.5)
    with pytest.raises(ValueError, match="pairwise"):
        SpatialParams(pairwise="grabcut")


DAVIS = ("blackswan", "parkour")


@pytest.fixture(scope="module", params=DAVIS)
def davis(request, refdata):
    import cv2

    seq = request.param
    images = sorted((refdata / "davis2016" / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:4]
    masks = sorted((refdata / "davis2016" / "Annotations" / "480p" / seq).glob("*.png"))[:4]
    if len(images) < 4 or len(masks) < 4:
        pytest.skip(f"DAVIS {seq} not found")
    frames = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in images])
    truth = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127 for p in masks])
    frames = working_frames(frames, 120)  # small, to stay fast
    truth = np.stack(
        [cv2.resize(m.view(np.uint8), frames.shape[2:0:-1], interpolation=cv2.INTER_NEAREST) > 0
         for m in truth]
    )
    return frames, truth, compute_superpixels(frames, SuperpixelParams(count=200))


def test_energy_decreases_on_real_frames(davis):
    import cv2

    frames, truth, sp = davis
    dilated = np.stack([cv2.dilate(m.view(np.uint8), np.ones((9, 9), np.uint8)) > 0 for m in truth])
    starts = {
        "dilated truth": pixel_means(sp.labels, dilated.astype(float), sp.num_nodes) > 0.5,
        "saliency": initial_mask(sp, frames, "static"),
    }
    cut = 0
    for pairwise in ("normalized", "literal"):
        for start in starts.values():
            params = SpatialParams(pairwise=pairwise)
            problem = build_problem(sp, start, range(len(frames)), params)
            if problem is None:
                continue
            cut += 1
            new = problem.solve()
            assert problem.energy(new) <= problem.energy(start) + quantisation(problem)
    assert cut >= 2


def test_real_jhmdb_frames_from_the_box_and_from_saliency(refdata):
    """J-HMDB 'catch' (40 frames, 320 x 240, the actor 3.4 % of the pixels) at the command's
    defaults. The spec's prototype measured there: from the ground truth's bounding boxes
    one round gives IoU 0.25-0.37 at λ = 1; from the saliency start (IoU 0.11) the cut finds
    nothing of the actor. Here the same, and every cut lowers its energy."""
    import cv2
    import scipy.io

    video = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    images = sorted((refdata / "jhmdb" / "frames" / video).glob("*.png"))
    mat = refdata / "jhmdb" / "puppet_mask" / "catch" / f"{video}.mat"
    if len(images) != 40 or not mat.is_file():
        pytest.skip("J-HMDB reference clip not found")
    truth = np.moveaxis(scipy.io.loadmat(str(mat))["part_mask"], 2, 0) > 0  # T x H x W
    frames = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in images])
    sp = compute_superpixels(frames, SuperpixelParams())
    box = np.zeros_like(truth)
    for t, m in enumerate(truth):
        ys, xs = np.nonzero(m)
        box[t, ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True

    def actor_iou(labels):
        m = node_masks(sp, labels, truth.shape[1:])
        return float((m & truth).sum() / (m | truth).sum())

    start = pixel_means(sp.labels, box.astype(float), sp.num_nodes) > 0.5
    r = segment_round(sp, start, range(40))
    assert not r.skipped and r.energy_after <= r.energy_before
    assert 0.2 <= actor_iou(r.labels) <= 0.4, actor_iou(r.labels)
    saliency = initial_mask(sp, working_frames(frames, SuperpixelParams().work_size), "static")
    assert 0.05 <= actor_iou(saliency) <= 0.2  # the prototype's 0.11
    r = segment_round(sp, saliency, range(40))
    # a regression figure, not a goal: the GMMs fitted on that start take the wrong side
    assert r.energy_after <= r.energy_before and actor_iou(r.labels) < 0.05
