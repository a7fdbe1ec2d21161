"""stages/hmm/: counting, Eq. (4), and the forward-backward belief of 3DFCN §3.5
checked against brute-force enumeration of every label path and a log-space reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vidseg_cli.stages.hmm.fit import TransitionCounts, check_hmm
from vidseg_cli.stages.hmm.recursions import DEFAULT_MIN_PROB, ProbabilityError, prior_sequence
from vidseg_cli.stages.hmm.smooth import smooth
from vidseg_cli.stages.hmm.tiles import TileInfo, plan_tiles


# -- references -----------------------------------------------------------------------
def brute_force(q: np.ndarray, prior: np.ndarray, trans: np.ndarray, min_prob: float,
                divide: bool = True) -> np.ndarray:
    """P(l_t | Z_T) by enumerating all C^T paths of the HMM whose observation term is
    q_t(l) / P(l_t) (Eq. (2)-(4)): weight(path) = pi(l_1) prod A(l_{t-1}, l_t)
    prod q_t(l_t) / p_t(l_t). q: (T, C)."""
    t_len, c = q.shape
    q = np.maximum(q, min_prob)
    p = np.empty((t_len, c))
    p[0] = prior
    for t in range(1, t_len):
        p[t] = trans.T @ p[t - 1]  # Eq. (4), written independently of the module
    belief = np.zeros((t_len, c))
    for path in itertools.product(range(c), repeat=t_len):
        w = prior[path[0]]
        for t in range(1, t_len):
            w *= trans[path[t - 1], path[t]]
        for t, lab in enumerate(path):
            w *= (q[t, lab] / p[t, lab] if divide else q[t, lab]) if p[t, lab] > 0 else 0.0
        for t, lab in enumerate(path):
            belief[t, lab] += w
    return belief / belief.sum(axis=1, keepdims=True)


def log_space(q: np.ndarray, prior: np.ndarray, trans: np.ndarray, min_prob: float) -> np.ndarray:
    """Forward-backward in float64 log space (no scaling), for long sequences. q: (T, C)."""
    from scipy.special import logsumexp

    t_len, c = q.shape
    with np.errstate(divide="ignore"):
        la = np.log(trans)
        p = np.empty((t_len, c))
        p[0] = prior
        for t in range(1, t_len):
            p[t] = trans.T @ p[t - 1]
        le = np.log(np.maximum(q, min_prob)) - np.log(p)  # log q / p
        le[~np.isfinite(le)] = -np.inf
        fa = np.empty((t_len, c))
        fa[0] = np.log(prior) + le[0]
        for t in range(1, t_len):
            fa[t] = le[t] + logsumexp(fa[t - 1][:, None] + la, axis=0)
        fb = np.zeros((t_len, c))
        for t in range(t_len - 2, -1, -1):
            fb[t] = logsumexp(la + (le[t + 1] + fb[t + 1])[None, :], axis=1)
    g = fa + fb
    g -= logsumexp(g, axis=1, keepdims=True)
    return np.exp(g)


def random_hmm(rng, c: int, zeros: bool = False):
    prior = rng.dirichlet(np.ones(c))
    trans = rng.dirichlet(np.ones(c), size=c)
    if zeros:
        trans[0, c - 1] = 0.0  # never 0 -> C-1
        trans[c - 1, 0] = 0.0
        trans /= trans.sum(axis=1, keepdims=True)
        prior[c - 1] = 0.0  # C-1 can't start
        prior /= prior.sum()
    return prior, trans


# -- the belief against enumeration -----------------------------------------------------
@pytest.mark.parametrize("t_len,c", [(1, 2), (2, 3), (3, 2), (4, 3), (5, 2), (5, 3)])
@pytest.mark.parametrize("zeros", [False, True])
def test_frame_scores_match_enumeration(t_len, c, zeros):
    rng = np.random.default_rng(100 * t_len + c + zeros)
    prior, trans = random_hmm(rng, c, zeros)
    q = rng.dirichlet(np.ones(c) * 0.7, size=t_len)  # T x C
    if zeros:
        q[0, 0] = 0.0  # exact zeros are read as min_prob
        q[0] /= q[0].sum()
    want = brute_force(q, prior, trans, 1e-6)
    for log in (None, False):  # frame scores default to log space; scaled as well
        got = smooth(q, prior, trans, min_prob=1e-6, log_space=log)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert got.shape == (t_len, c)


@pytest.mark.parametrize("t_len,c", [(2, 2), (4, 3), (5, 3)])
def test_pixel_scores_match_enumeration(t_len, c):
    rng = np.random.default_rng(7 + t_len * c)
    prior, trans = random_hmm(rng, c, zeros=(t_len == 4))
    h, w = 3, 4
    q = rng.dirichlet(np.ones(c), size=(t_len, h, w)).transpose(0, 3, 1, 2)  # T x C x H x W
    want = np.empty_like(q)
    for y in range(h):
        for x in range(w):
            want[:, :, y, x] = brute_force(q[:, :, y, x], prior, trans, DEFAULT_MIN_PROB)
    for log in (False, True):
        got = smooth(q.astype(np.float32), prior, trans, log_space=log)
        np.testing.assert_allclose(got, want, atol=2e-6)


def test_belief_differs_from_input_and_from_plain_forward_backward():
    """The observation is q / P(l_t): using q itself as the likelihood gives another answer."""
    rng = np.random.default_rng(3)
    prior = np.array([0.9, 0.1])
    trans = np.array([[0.95, 0.05], [0.2, 0.8]])
    q = rng.dirichlet(np.ones(2), size=5)
    got = smooth(q, prior, trans)
    assert not np.allclose(got, q, atol=1e-3)
    # A plain HMM with q as likelihood = brute force with p_t replaced by 1.
    t_len, c = q.shape
    plain = np.zeros((t_len, c))
    for path in itertools.product(range(c), repeat=t_len):
        wgt = prior[path[0]] * np.prod([trans[path[i - 1], path[i]] for i in range(1, t_len)])
        wgt *= np.prod([q[i, path[i]] for i in range(t_len)])
        for i, lab in enumerate(path):
            plain[i, lab] += wgt
    plain /= plain.sum(1, keepdims=True)
    assert not np.allclose(got, plain, atol=1e-3)


def test_prior_sequence_is_eq4():
    rng = np.random.default_rng(0)
    prior, trans = random_hmm(rng, 4)
    p = prior_sequence(prior, trans, 6)
    for t in range(6):
        np.testing.assert_allclose(p[t], prior @ np.linalg.matrix_power(trans, t))


def test_single_frame_belief_is_the_posterior():
    """T = 1: Eq. (1) reduces to P(l_1 | z_1), the network's own posterior."""
    q = np.array([[0.2, 0.5, 0.3]])
    got = smooth(q, np.array([0.5, 0.3, 0.2]), np.full((3, 3), 1 / 3))
    np.testing.assert_allclose(got, q, atol=1e-7)


# -- tiles, threads, devices --------------------------------------------------------------
def test_tiled_equals_untiled_and_threads_equal_one_thread():
    rng = np.random.default_rng(1)
    t_len, c, h, w = 6, 4, 37, 150
    prior, trans = random_hmm(rng, c)
    q = rng.dirichlet(np.ones(c), size=(t_len, h, w)).transpose(0, 3, 1, 2).astype(np.float32)
    whole = smooth(q, prior, trans, max_memory=None)
    per_px = plan_tiles(q.shape, 4, None).bytes_per_pixel
    for budget in (per_px * 150 * 5, per_px * 40, per_px * 1):  # rows, part rows, 1 pixel
        plan = plan_tiles(q.shape, 4, budget)
        assert plan.count > 1
        tiled = smooth(q, prior, trans, max_memory=budget)
        np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-6)
        # The torch path (log space), whose tile buffer is reused across part-row tiles of
        # two sizes: the same. A pixel costs it more, so not at the one-pixel budget.
        if budget > per_px:
            tiled_log = smooth(q, prior, trans, max_memory=budget, log_space=True)
            np.testing.assert_allclose(tiled_log, whole, rtol=0, atol=1e-5)
    threaded = smooth(q, prior, trans, threads=2)
    np.testing.assert_allclose(threaded, whole, rtol=0, atol=1e-6)


def test_plan_tiles_respects_budget_and_refuses_too_small():
    plan = plan_tiles((40, 22, 240, 320), 4, 64 << 20)
    assert plan.rows * plan.cols * plan.bytes_per_pixel <= 64 << 20
    assert plan.cols == 320 and plan.count == -(-240 // plan.rows)
    with pytest.raises(ValueError, match="too small"):
        plan_tiles((40, 22, 240, 320), 4, 100)


def test_reads_only_tiles_of_a_lazy_array():
    """probs may be any sliceable array (an h5py dataset): only tiles are read."""
    rng = np.random.default_rng(2)
    q = rng.dirichlet(np.ones(3), size=(5, 8, 9)).transpose(0, 3, 1, 2).astype(np.float32)
    seen = []

    class Lazy:
        shape, dtype = q.shape, q.dtype

        def __getitem__(self, idx):
            seen.append(idx)
            return q[idx]

    prior, trans = random_hmm(rng, 3)
    budget = plan_tiles(q.shape, 4, None).bytes_per_pixel * 9 * 2
    got = smooth(Lazy(), prior, trans, max_memory=budget)
    np.testing.assert_allclose(got, smooth(q, prior, trans), atol=1e-6)
    assert len(seen) == 4  # 8 rows in tiles of 2


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("in_dtype,out_dtype", [(np.float16, np.float16), (np.float16, np.float64),
                                                (np.float64, np.float16)])
def test_other_input_and_output_dtypes(backend, in_dtype, out_dtype):
    """Scores and beliefs in float16/float64 are cast tile by tile (tiles of part rows too)."""
    rng = np.random.default_rng(4)
    q = rng.dirichlet(np.ones(3), size=(4, 5, 6)).transpose(0, 3, 1, 2).astype(in_dtype)
    prior, trans = random_hmm(rng, 3)
    ref = smooth(q.astype(np.float32), prior, trans)
    for plan in (None, TileInfo(rows=2, cols=4, count=6, bytes_per_pixel=1)):
        out = np.empty(q.shape, out_dtype)
        smooth(q, prior, trans, out=out, backend=backend, plan=plan)
        np.testing.assert_allclose(out.astype(np.float32), ref, atol=2e-3)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(5)
    q = rng.dirichlet(np.ones(5), size=(7, 16, 16)).transpose(0, 3, 1, 2).astype(np.float32)
    prior, trans = random_hmm(rng, 5, zeros=True)
    np.testing.assert_allclose(smooth(q, prior, trans, device="cuda"),
                               smooth(q, prior, trans), atol=1e-5)


# -- long videos, zeros ---------------------------------------------------------------------
def test_long_frame_sequence_with_zeros_matches_log_space():
    rng = np.random.default_rng(6)
    c, t_len = 4, 5000
    prior, trans = random_hmm(rng, c, zeros=True)
    q = rng.dirichlet(np.ones(c) * 0.3, size=t_len)
    q[rng.random((t_len, c)) < 0.2] = 0.0  # many exact zeros
    q[:, 1] += (q.sum(1) == 0)  # keep rows nonzero before renormalising
    q /= q.sum(1, keepdims=True)
    got = smooth(q, prior, trans)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(got, log_space(q, prior, trans, DEFAULT_MIN_PROB), atol=1e-5)
    assert np.all(got[0, c - 1] == 0)  # impossible first state stays impossible


def test_long_pixel_sequence_with_zeros_matches_log_space():
    """Thousands of frames of float32 scaled recursions, with exact zeros in the scores
    and in the HMM (an ergodic one, as fitted HMMs are), against float64 log space."""
    rng = np.random.default_rng(9)
    c, t_len = 4, 3000
    prior = np.array([0.7, 0.3, 0.0, 0.0])
    trans = np.array([[0.9, 0.1, 0.0, 0.0], [0.0, 0.8, 0.2, 0.0],
                      [0.0, 0.0, 0.7, 0.3], [0.25, 0.0, 0.0, 0.75]])
    q = rng.dirichlet(np.ones(c) * 0.5, size=(t_len, 2, 3)).transpose(0, 3, 1, 2)
    q[rng.random(q.shape) < 0.3] = 0.0
    q[:, 0] += q.sum(1) == 0
    q /= q.sum(1, keepdims=True)
    q[100:110, :, 0, 0] = [0, 0, 0, 1]  # observations that contradict the chain
    got = smooth(q.astype(np.float32), prior, trans)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)
    for y, x in [(0, 0), (1, 2)]:
        ref = log_space(q[:, :, y, x], prior, trans, DEFAULT_MIN_PROB)
        np.testing.assert_allclose(got[:, :, y, x], ref, atol=1e-4)


def test_absorbing_hmm_over_long_video_in_log_space():
    """An HMM with zero transitions whose prior for a state decays to ~1e-13, and scores
    that insist on another state: beliefs span more than float32's range, --log-space
    gets them exactly, and the default stays finite and normalised."""
    c, t_len = 3, 3000
    prior = np.array([1.0, 0.0, 0.0])
    trans = np.array([[0.99, 0.01, 0.0], [0.0, 0.99, 0.01], [0.0, 0.0, 1.0]])
    q = np.zeros((t_len, c, 1, 2), np.float32)
    q[:, 2] = 1.0
    q[:, 0, 0, 1], q[:, 2, 0, 1] = 1.0, 0.0
    ref = log_space(q[:, :, 0, 0].astype(np.float64), prior, trans, DEFAULT_MIN_PROB)
    exact = smooth(q, prior, trans, log_space=True)
    np.testing.assert_allclose(exact[:, :, 0, 0], ref, atol=1e-6)
    assert exact[:, 0, 0, 1].min() > 0.999  # the pixel that agrees with the chain
    fast = smooth(q, prior, trans)
    assert np.all(np.isfinite(fast))
    np.testing.assert_allclose(fast.sum(1), 1, atol=1e-5)


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda q: q.__setitem__((2, 0, 1, 1), np.nan), "frame 2: NaN"),
        (lambda q: q.__setitem__((1, slice(None), 0, 2), 0.5), "frame 1: class probabilities sum to 1.5 at pixel \\(y=0, x=2\\)"),
        (lambda q: q.__setitem__((0, 0, 1, 0), -0.1), "frame 0: negative"),
    ],
)
def test_bad_probabilities_are_refused(edit, match):
    q = np.full((3, 3, 2, 4), 1 / 3, np.float32)
    edit(q)
    with pytest.raises(ProbabilityError, match=match):
        smooth(q, np.full(3, 1 / 3), np.full((3, 3), 1 / 3))


def test_tolerance_allows_rounding():
    q = np.full((2, 3, 2, 2), 1 / 3, np.float32) * (1 + 5e-4)
    smooth(q, np.full(3, 1 / 3), np.full((3, 3), 1 / 3))  # within 1e-3
    with pytest.raises(ProbabilityError):
        smooth(q, np.full(3, 1 / 3), np.full((3, 3), 1 / 3), tolerance=1e-4)


@pytest.mark.parametrize(
    "prior,trans,match",
    [
        ([0.5, 0.5], [[0.9, 0.2], [0.5, 0.5]], "transition row 0 sums to 1.1"),
        ([0.5, 0.6], [[0.9, 0.1], [0.5, 0.5]], "prior sums to 1.1"),
        ([0.5, 0.5], [[1.1, -0.1], [0.5, 0.5]], "negative"),
        ([0.5, 0.5], [[np.nan, 0.1], [0.5, 0.5]], "NaN"),
        ([1.0], [[0.5, 0.5], [0.5, 0.5]], "don't fit"),
    ],
)
def test_check_hmm(prior, trans, match):
    with pytest.raises(ValueError, match=match):
        check_hmm(np.array(prior), np.array(trans))


def test_class_count_mismatch():
    with pytest.raises(ValueError, match="the HMM has 2 classes"):
        smooth(np.full((2, 3), 1 / 3), np.array([0.5, 0.5]), np.full((2, 2), 0.5))


# -- fitting ---------------------------------------------------------------------------------
def test_counts_by_hand():
    c = TransitionCounts(3)
    c.add(np.array([0, 0, 1, 1, 2]))  # 0->0, 0->1, 1->1, 1->2
    c.add(np.array([[[1, 0]], [[1, 0]]], np.uint8))  # two pixels: 1->1, 0->0
    np.testing.assert_array_equal(c.first, [2, 1, 0])
    np.testing.assert_array_equal(c.pairs, [[2, 1, 0], [0, 2, 1], [0, 0, 0]])
    assert c.sequences == 3
    prior, trans = c.estimate(0.0)
    np.testing.assert_allclose(prior, [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(trans, [[2 / 3, 1 / 3, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]])
    prior, trans = c.estimate(1.0)  # Laplace
    np.testing.assert_allclose(prior, [3 / 6, 2 / 6, 1 / 6])
    np.testing.assert_allclose(trans[0], [3 / 6, 2 / 6, 1 / 6])
    np.testing.assert_allclose(trans[2], [1 / 3, 1 / 3, 1 / 3])
    check_hmm(prior, trans)


def test_counts_chunked_equal_direct():
    rng = np.random.default_rng(8)
    lab = rng.integers(0, 4, size=(50, 6, 7)).astype(np.uint8)
    a, b = TransitionCounts(4), TransitionCounts(4)
    a.add(lab, frames_per_chunk=3)
    b.add(lab, frames_per_chunk=1000)
    np.testing.assert_array_equal(a.pairs, b.pairs)
    direct = np.zeros((4, 4), int)
    np.add.at(direct, (lab[:-1].ravel(), lab[1:].ravel()), 1)
    np.testing.assert_array_equal(a.pairs, direct)
    assert a.pairs.sum() == 49 * 42


def test_counts_refuse_out_of_range_labels():
    with pytest.raises(ValueError, match="label value 5 is outside the 3 classes"):
        TransitionCounts(3).add(np.array([0, 5, 1]))


@pytest.mark.parametrize("backend,log", [("numba", False), ("torch", False), ("torch", True)])
def test_uniform_score_prior_uses_posteriors_as_likelihoods(backend, log):
    rng = np.random.default_rng(11)
    prior, trans = random_hmm(rng, 3, zeros=True)
    q = rng.dirichlet(np.ones(3), size=(4, 2, 3)).transpose(0, 3, 1, 2)  # T x C x H x W
    want = np.empty_like(q)
    for y in range(2):
        for x in range(3):
            want[:, :, y, x] = brute_force(q[:, :, y, x], prior, trans, DEFAULT_MIN_PROB, divide=False)
    got = smooth(q.astype(np.float32), prior, trans, score_prior="uniform", backend=backend,
                     log_space=log)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert not np.allclose(smooth(q.astype(np.float32), prior, trans), want, atol=1e-3)
