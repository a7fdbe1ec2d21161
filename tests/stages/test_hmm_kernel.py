"""stages/hmm/kernel.py, the fused numba kernel behind hmm.smooth on CPU: the A = B + u 1^T
split is exact, and the belief equals brute-force enumeration and the torch path on
dense, sparse-plus-floor (hmm-fit's) and zero-holding HMMs, on awkward shapes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.stages.test_hmm import brute_force, random_hmm
from vidseg_cli.stages.hmm import kernel as hmm_kernel
from vidseg_cli.stages.hmm.fit import TransitionCounts
from vidseg_cli.stages.hmm.recursions import DEFAULT_MIN_PROB, ProbabilityError
from vidseg_cli.stages.hmm.smooth import smooth
from vidseg_cli.stages.hmm.tiles import plan_tiles


def fitted_hmm(rng, c: int, t_len: int = 30, seen: int = 2):
    """An HMM as hmm-fit makes it (Lidstone s = 1) from label volumes that use only
    `seen` of the C classes besides background: most rows are the floor alone."""
    counts = TransitionCounts(c)
    for k in rng.choice(np.arange(1, c), size=min(seen, c - 1), replace=False):
        lab = np.zeros((t_len, 4, 5), np.uint8)
        t0 = int(rng.integers(0, t_len // 2))
        lab[t0:, 1:3, 1:4] = k
        counts.add(lab)
    return counts.estimate(1.0)


def sparse_hmm(rng, c: int):
    """A floor on every row plus a few larger entries (not from counts)."""
    trans = np.full((c, c), 0.01)
    for k in range(c):
        trans[k, k] += 1.0
        trans[k, rng.integers(0, c)] += 0.3
    trans /= trans.sum(axis=1, keepdims=True)
    return rng.dirichlet(np.ones(c)), trans


def pixels(rng, t_len, c, h, w, zeros=0.0, dtype=np.float32):
    q = rng.dirichlet(np.ones(c) * 0.6, size=(t_len, h, w)).transpose(0, 3, 1, 2)  # T x C x H x W
    if zeros:
        q[rng.random(q.shape) < zeros] = 0.0
        q[:, 0] += q.sum(1) == 0
        q /= q.sum(1, keepdims=True)
    return q.astype(dtype)


def make(kind, rng, c):
    if kind == "dense":
        return random_hmm(rng, c)
    if kind == "zeros":
        return random_hmm(rng, c, zeros=True) if c >= 2 else (np.ones(1), np.ones((1, 1)))
    if kind == "fitted":
        return fitted_hmm(rng, c)
    return sparse_hmm(rng, c)


# -- the split A = B + u 1^T -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "sparse", "fitted", "zeros"])
def test_split_is_exact(kind):
    rng = np.random.default_rng(0)
    prior, trans = make(kind, rng, 6)
    rows, cols, vals, u = hmm_kernel.sparse_split(trans)
    b = np.zeros_like(trans)
    b[rows, cols] = trans[rows, cols] - trans.min(axis=1)[rows]  # float64, as the split
    # B + u 1^T is A up to float64 rounding: nothing dropped, nothing approximated.
    np.testing.assert_allclose(b + trans.min(axis=1)[:, None], trans, rtol=1e-15, atol=0)
    np.testing.assert_allclose(vals, b[rows, cols], rtol=1e-7)  # float32 of those
    np.testing.assert_allclose(u, trans.min(axis=1), rtol=1e-7)
    assert np.all(vals > 0)
    # Entries at the row floor are dropped, and only those.
    assert rows.size == int((trans > trans.min(axis=1, keepdims=True)).sum())


def test_fitted_hmm_has_few_nonzeros():
    """hmm-fit's Lidstone rows: unseen transitions are bitwise equal, so they cancel."""
    rng = np.random.default_rng(1)
    prior, trans = fitted_hmm(rng, 22, seen=3)
    rows, _, _, _ = hmm_kernel.sparse_split(trans)
    assert rows.size <= 4 + 2 * 3  # background row + two per seen action
    assert (trans > 0).all()  # every transition possible, yet B is sparse


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_grouped_holds_every_nonzero_once(kind):
    rng = np.random.default_rng(2)
    _, trans = make(kind, rng, 9)
    rows, cols, vals, _ = hmm_kernel.sparse_split(trans)
    g = hmm_kernel.grouped(rows, cols, vals, 9)
    rebuilt = np.zeros((9, 9), np.float32)
    for k in range(9):
        for i in range(g.ptr[k], g.ptr[k + 1]):
            np.add.at(rebuilt[k], g.src[i], g.val[i])  # padding adds 0 to a real source
    want = np.zeros((9, 9), np.float32)
    want[rows, cols] = vals
    np.testing.assert_array_equal(rebuilt, want)
    np.testing.assert_array_equal(g.has, np.bincount(rows, minlength=9) > 0)


# -- the belief --------------------------------------------------------------------------------
@pytest.mark.parametrize("t_len,c", [(1, 2), (2, 3), (3, 1), (4, 3), (5, 2), (5, 3)])
@pytest.mark.parametrize("kind", ["dense", "sparse", "fitted", "zeros"])
def test_kernel_matches_enumeration(t_len, c, kind):
    rng = np.random.default_rng(10 * t_len + c)
    prior, trans = make(kind, rng, c)
    q = pixels(rng, t_len, c, 3, 7, zeros=0.2)  # exact zeros: read as min_prob
    want = np.empty(q.shape)
    for y in range(3):
        for x in range(7):
            want[:, :, y, x] = brute_force(q[:, :, y, x].astype(np.float64), prior, trans,
                                           DEFAULT_MIN_PROB)
    got = smooth(q, prior, trans, backend="numba")
    np.testing.assert_allclose(got, want, atol=3e-6)


@pytest.mark.parametrize(
    "t_len,c,h,w",
    [(1, 5, 3, 3), (6, 1, 2, 9), (7, 5, 1, 37), (12, 22, 7, 151), (40, 22, 3, 100), (9, 8, 17, 31)],
)
@pytest.mark.parametrize("kind", ["dense", "sparse", "fitted", "zeros"])
def test_kernel_matches_torch(t_len, c, h, w, kind):
    """Pixel counts that are no multiple of a block, T = 1, C = 1, C not a multiple of
    four, zeros in the prior and transitions, and exact zeros in the scores."""
    rng = np.random.default_rng(t_len * 1000 + c * 10 + w)
    prior, trans = make(kind, rng, c)
    q = pixels(rng, t_len, c, h, w, zeros=0.1)
    ref = smooth(q, prior, trans, backend="torch")
    got = smooth(q, prior, trans, backend="numba")
    np.testing.assert_allclose(got, ref, atol=2e-6)
    two = smooth(q, prior, trans, backend="numba", threads=2)
    np.testing.assert_array_equal(two, got)  # pixels are independent: same numbers


def test_kernel_min_prob_flooring():
    """A posterior of 0 is read as min_prob: with a larger floor the belief changes as
    the torch path's does."""
    rng = np.random.default_rng(3)
    prior, trans = sparse_hmm(rng, 4)
    q = pixels(rng, 6, 4, 2, 5, zeros=0.4)
    for floor in (1e-6, 1e-2):
        ref = smooth(q, prior, trans, min_prob=floor, backend="torch")
        got = smooth(q, prior, trans, min_prob=floor, backend="numba")
        np.testing.assert_allclose(got, ref, atol=2e-6)
    assert not np.allclose(smooth(q, prior, trans, min_prob=1e-2),
                           smooth(q, prior, trans, min_prob=1e-6), atol=1e-3)


def test_kernel_float16_in_and_out():
    rng = np.random.default_rng(4)
    prior, trans = fitted_hmm(rng, 7)
    q = pixels(rng, 8, 7, 5, 13, dtype=np.float16)
    out = np.empty(q.shape, np.float16)
    smooth(q, prior, trans, out=out, backend="numba", max_memory=20_000)  # several tiles
    ref = smooth(q.astype(np.float32), prior, trans, backend="torch")
    np.testing.assert_allclose(out.astype(np.float32), ref, atol=1e-3)


def test_tiled_equals_untiled_in_every_layout():
    """In place (a float32 array of whole-row tiles), through tile buffers (part rows, a
    lazy input, an output that is no numpy array), and on two threads: the same."""
    rng = np.random.default_rng(5)
    prior, trans = fitted_hmm(rng, 6)
    q = pixels(rng, 9, 6, 11, 23)
    whole = smooth(q, prior, trans, max_memory=None)
    # through an output buffer a pixel costs the most: every budget fits one pixel
    per_px = plan_tiles(q.shape, 4, None, out_itemsize=4).bytes_per_pixel

    class Lazy:  # an h5py dataset in all that smooth uses: shape, dtype, slicing
        def __init__(self, a):
            self.a, self.shape, self.dtype = a, a.shape, a.dtype

        def __getitem__(self, idx):
            return self.a[idx].copy()

        def __setitem__(self, idx, v):
            self.a[idx] = v

    for budget in (per_px * 23 * 4, per_px * 7, per_px):  # rows, part rows, one pixel
        assert plan_tiles(q.shape, 4, budget).count > 1
        np.testing.assert_array_equal(smooth(q, prior, trans, max_memory=budget), whole)
        target = Lazy(np.full(q.shape, np.nan, np.float32))
        smooth(Lazy(q), prior, trans, out=target, max_memory=budget, threads=2)
        np.testing.assert_array_equal(target.a, whole)


@pytest.mark.parametrize("c", [3, 4, 9])  # classes done one, four, and both ways at a time
def test_kernel_refuses_bad_scores_with_the_first_bad_place(c):
    q = np.full((5, c, 4, 6), 1 / c, np.float32)
    hmm_ok = (np.full(c, 1 / c), np.full((c, c), 1 / c))
    for k in range(c):  # a tiny negative score, in each class in turn: the sum stays 1
        bad = q.copy()
        bad[3, k, 1, 1] = -1e-9
        bad[3, (k + 1) % c, 1, 1] = 2 / c
        with pytest.raises(ProbabilityError,
                           match=r"frame 3: negative score .* at pixel \(y=1, x=1\)"):
            smooth(bad, *hmm_ok, backend="numba")
    q[4, :, 0, 0] = 0.9  # a bad sum; and a NaN later in the tile, then earlier
    with pytest.raises(ProbabilityError, match=r"frame 4: class probabilities sum to"):
        smooth(q, *hmm_ok, backend="numba")
    q[4, 0, 3, 5] = np.nan
    with pytest.raises(ProbabilityError,
                       match=r"frame 4: NaN or infinite score at pixel \(y=3, x=5\)"):
        smooth(q, *hmm_ok, backend="numba")
    q[1, c - 1, 2, 2] = np.inf
    with pytest.raises(ProbabilityError,
                       match=r"frame 1: NaN or infinite score at pixel \(y=2, x=2\)"):
        smooth(q, *hmm_ok, backend="numba")
    smooth(q, *hmm_ok, backend="numba", tolerance=None)  # unchecked: runs


def test_backend_choice():
    q = np.full((2, 2, 1, 3), 0.5, np.float32)
    a = (np.full(2, 0.5), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="backend must be one of"):
        smooth(q, *a, backend="cuda")
    with pytest.raises(ValueError, match="backend='torch'"):
        smooth(q, *a, backend="numba", log_space=True)
    np.testing.assert_allclose(smooth(q, *a, backend="torch"), smooth(q, *a), atol=1e-7)


def test_forward_backward_checks_its_arrays():
    m = hmm_kernel.model(np.full(2, 0.5), np.full((2, 2), 0.5), np.ones((3, 2)))
    ws = hmm_kernel.Workspace(3, 2, 16)
    q = np.full((3, 2, 10), 0.5, np.float32)
    with pytest.raises(ValueError, match="out: expected a C-contiguous float32"):
        hmm_kernel.forward_backward(q, np.empty((3, 2, 10), np.float64), m, 1e-6, 1e-3, ws)
    with pytest.raises(ValueError, match="pixels 0..10 of 10 into 5"):
        hmm_kernel.forward_backward(q, np.empty((3, 2, 10), np.float32), m, 1e-6, 1e-3, ws,
                                    out_start=5)
    out = np.zeros((3, 2, 14), np.float32)
    assert hmm_kernel.forward_backward(q, out, m, 1e-6, 1e-3, ws, 2, 7, 9)
    np.testing.assert_allclose(out[:, :, 9:14], 0.5)
    assert not out[:, :, :9].any()  # nothing outside the range
