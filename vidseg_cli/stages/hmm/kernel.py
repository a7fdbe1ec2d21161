"""The scaled forward-backward recursions of 3DFCN §3.5 (Eq. (1)-(4)) as a fused CPU
kernel (numba), for `stages/hmm/smooth.py`.

Why compiled: per frame and pixel the recursions are a C x C product and ~10 elementwise
passes (floor, emission weight, normaliser, scale, check, ...). In torch each pass is its
own sweep over a (C, n) block plus Python overhead per op; here they are fused into
three passes per frame over a block of pixels that stays in cache (its forward messages
take 2 MiB where T x C allows), the pixel loop innermost and contiguous, vectorised by
LLVM.

Maths (the same as `recursions._forward_backward`, in the notation of the hmm package's
docstring): with r_t ∝ 1 / P(l_t) (Eq. (4)) the observation term is
e_t = max(q_t, min_prob) * r_t and

    alpha_1 = max(q_1, min_prob) * [pi > 0] / c_1
    alpha_t = e_t * (A^T alpha_{t-1}) / c_t                                      Eq. (2)
    beta_T = 1,  beta_t = A (e_{t+1} * beta_{t+1}) / c_{t+1}                       Eq. (3)
    gamma_t = alpha_t * beta_t, renormalised over classes                        Eq. (1)

The kernel stores a_t = c_t alpha_t (before the division by c_t) and applies 1 / c_t
where a_t is next read: gamma_t is renormalised per pixel, so the per-pixel factor c_t
cancels in Eq. (1), and every stored value keeps the magnitude it has in the torch path
(the same float32 range). Where the HMM has zeros, beta is clamped to BETA_MAX as there.

Structure, exactly: A = B + u 1^T with u_k = min_j A[k, j] (a row floor: hmm-fit's
Lidstone smoothing gives every row one, (0 + s) / (N_k + C s)), so

    A^T alpha = B^T alpha + (u . alpha) 1        A h = B h + u (1 . h)

and only B's nonzeros are visited, GROUP of them per pass over a row. A fitted HMM's B
has a few entries per observed transition, and the classes it never saw have none: their
rows of the product are the shared term alone (read from one row, never formed). A dense
HMM has ~C^2 nonzeros and costs what a dense product does. No entry is dropped: this is
exact, not an approximation.

`forward_backward` runs a range of pixels and releases the GIL, so `smooth` runs ranges
on a pool of `threads` Python threads. (Not numba's prange: a parallel=True function
added ~6 s to the first compile, on top of ~4 s for the kernel, and numba's OpenMP
threading layer is not fork-safe.) Compiled on first use, then loaded from numba's disk
cache (cache=True).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# Clamp for beta when the HMM has zeros: states the HMM makes unreachable carry alpha = 0
# and an unbounded beta; a finite beta keeps 0 * beta at 0 (recursions._forward_backward).
BETA_MAX = np.float32(1e30)
# float32 constants: a float64 literal would promote the arithmetic around it to float64.
ZERO = np.float32(0.0)
ONE = np.float32(1.0)
NAN = np.float32(np.nan)
GROUP = 4  # nonzeros of B per pass over a row
BLOCK_BYTES = 2 << 20  # a worker's forward messages (T x C x block float32), at most


# -- the HMM's structure ----------------------------------------------------------------
def sparse_split(transition: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A = B + u 1^T: (rows k, cols l, values B[k, l]) of B's nonzeros and the row floors u.

    In float64, then cast: entries equal to their row's minimum (hmm-fit's unseen
    transitions, all (0 + s) / (N_k + C s) and bitwise equal) give B[k, l] = 0 exactly.
    """
    a = np.asarray(transition, np.float64)
    u = a.min(axis=1)  # (C,) row floors
    b = a - u[:, None]  # (C, C) >= 0
    rows, cols = np.nonzero(b)
    return (rows.astype(np.int64), cols.astype(np.int64), b[rows, cols].astype(np.float32),
            u.astype(np.float32))


class Grouped(NamedTuple):
    """B's nonzeros by destination row, in groups of GROUP (one pass over a row each)."""

    ptr: np.ndarray  # (C+1,) group offsets of each row
    src: np.ndarray  # (G, GROUP) source rows
    val: np.ndarray  # (G, GROUP) float32 values
    has: np.ndarray  # (C,) bool: rows with nonzeros


def grouped(dst: np.ndarray, src: np.ndarray, val: np.ndarray, c: int) -> Grouped:
    """Group nonzeros (dst, src, val) by destination row. A row's last group is padded
    with weight 0 on the row's own first source, a value the row reads anyway (so
    padding never meets a value the real terms don't)."""
    order = np.lexsort((src, dst))
    dst, src, val = dst[order], src[order], val[order]
    per_row = np.bincount(dst, minlength=c)
    first = np.concatenate([[0], np.cumsum(per_row)])  # offsets into dst/src/val
    ptr = np.zeros(c + 1, np.int64)
    np.cumsum(-(-per_row // GROUP), out=ptr[1:])
    g_src = np.zeros((int(ptr[-1]), GROUP), np.int64)
    g_val = np.zeros((int(ptr[-1]), GROUP), np.float32)
    for row in range(c):
        idx = np.arange(per_row[row])
        g_src[ptr[row]:ptr[row + 1]] = src[first[row]] if per_row[row] else 0
        g_src[ptr[row] + idx // GROUP, idx % GROUP] = src[first[row] + idx]
        g_val[ptr[row] + idx // GROUP, idx % GROUP] = val[first[row] + idx]
    return Grouped(ptr, g_src, g_val, per_row > 0)


class Model(NamedTuple):
    """What the kernel needs of an HMM over T frames (see `model`)."""

    w2: np.ndarray  # (T+1, C) float32: emission weights r_t ∝ 1 / P(l_t), then [pi > 0]
    u: np.ndarray  # (C,) float32 row floors of A
    ones: np.ndarray  # (C,) float32
    fwd: Grouped  # B^T: destination l, source k
    bwd: Grouped  # B: destination k, source l
    beta_max: np.float32  # BETA_MAX when the HMM has zeros, else inf
    nonzeros: int  # of B


def model(prior: np.ndarray, transition: np.ndarray, r: np.ndarray,
          start: np.ndarray | None = None) -> Model:
    """The kernel's view of an HMM: prior (C,), transition (C, C), the (T, C)
    emission weights r_t ∝ 1 / P(l_t) (recursions.emission_weights), and the (C,) weights of
    alpha_1 ∝ q_1 * start (pi * r_1; [pi > 0] when r_1 ∝ 1 / pi, the default)."""
    prior = np.asarray(prior, np.float64)
    transition = np.asarray(transition, np.float64)
    c = prior.size
    rows, cols, v, u = sparse_split(transition)
    guard = bool((transition == 0).any() or (prior == 0).any())
    start = (prior > 0) if start is None else np.asarray(start, np.float64)
    w2 = np.concatenate([r, start[None]]).astype(np.float32)  # T+1 x C
    return Model(w2, u, np.ones(c, np.float32), grouped(cols, rows, v, c),
                 grouped(rows, cols, v, c), BETA_MAX if guard else np.float32(np.inf),
                 int(rows.size))


def block_size(t_len: int, c: int) -> int:
    """Pixels per work unit: a multiple of 16 (one AVX-512 register of float32), 16 to
    512, whose forward messages (T x C x block float32) fit BLOCK_BYTES if it can."""
    n = BLOCK_BYTES // max(1, 4 * t_len * c)
    return int(min(512, max(16, n // 16 * 16)))


# -- the kernel ---------------------------------------------------------------------------
# Each helper below is a loop over the pixels of a block (the innermost, contiguous axis)
# for one to four class rows, compiled on its own: written out inside one large
# function, LLVM left most of these loops scalar (it could not prove that rows of
# different arrays don't overlap), and numba's inline="always" made compiling take a
# minute. Helpers index whole arrays (no views: a view costs ~4 ns to make) and the
# scores and output at `o + j` with o unsigned: with a signed offset LLVM must allow for
# a negative index and gathers instead of loading a vector.
#
# error_model="numpy": 1 / 0 gives inf instead of a Python exception, whose check keeps
# LLVM from vectorising; fastmath "contract" only (fused multiply-adds): the NaN checks
# need NaN semantics.
_FAST = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"},
             no_cpython_wrapper=True, no_cfunc_wrapper=True)


@njit(**_FAST)
def _products(y, base, scale, x, tx, ptr, src, val, m):  # pragma: no cover - compiled
    """y[k] = scale[k] * base + sum over row k of B of val * x[tx, src], for the rows
    of B with nonzeros (GROUP of them per pass over the row)."""
    for k in range(ptr.size - 1):
        for g in range(ptr[k], ptr[k + 1]):
            k0, k1, k2, k3 = src[g, 0], src[g, 1], src[g, 2], src[g, 3]
            v0, v1, v2, v3 = val[g, 0], val[g, 1], val[g, 2], val[g, 3]
            if g == ptr[k]:
                sc = scale[k]
                for j in range(m):
                    y[k, j] = (sc * base[j] + v0 * x[tx, k0, j] + v1 * x[tx, k1, j]
                               + v2 * x[tx, k2, j] + v3 * x[tx, k3, j])
            else:
                for j in range(m):
                    y[k, j] += (v0 * x[tx, k0, j] + v1 * x[tx, k1, j] + v2 * x[tx, k2, j]
                                + v3 * x[tx, k3, j])


# The passes over class rows come in a one-row and a four-row form: the per-pixel sums
# (s, su, ...) cost a load and a store per pass, on this kind of CPU the dominant cost,
# so four rows share them. Row k's "p" is P[pk]: its row of the product for classes
# with nonzeros in B, else the shared row (u . a, 1 . h or ones), times the scalar ck.
@njit(**_FAST)
def _emit1(a, q, t, l0, o, m, P, p0, ic, it, w0, u0, min_prob, s, su, qs):  # pragma: no cover
    """Eq. (2) for class l0: a[t, l0] = P[p0] * ic[it] * max(q, min_prob) * w0; s += it
    (c_t), su += u_l * it (u . a_t); qs += q, or NaN if q < 0 (the check)."""
    for j in range(m):
        x0 = q[t, l0, o + np.uint64(j)]
        e0 = P[p0, j] * ic[it, j] * (max(x0, min_prob) * w0)
        a[t, l0, j] = e0
        s[j] += e0
        su[j] += u0 * e0
        qs[j] += x0 if x0 >= ZERO else NAN


@njit(**_FAST)
def _emit4(a, q, t, l0, l1, l2, l3, o, m, P, p0, p1, p2, p3, ic, it, w0, w1, w2, w3, u0, u1,
           u2, u3, min_prob, s, su, qs):  # pragma: no cover - compiled
    """_emit1 for four classes."""
    for j in range(m):
        oj = o + np.uint64(j)
        x0, x1, x2, x3 = q[t, l0, oj], q[t, l1, oj], q[t, l2, oj], q[t, l3, oj]
        icj = ic[it, j]
        e0 = P[p0, j] * icj * (max(x0, min_prob) * w0)
        e1 = P[p1, j] * icj * (max(x1, min_prob) * w1)
        e2 = P[p2, j] * icj * (max(x2, min_prob) * w2)
        e3 = P[p3, j] * icj * (max(x3, min_prob) * w3)
        a[t, l0, j] = e0
        a[t, l1, j] = e1
        a[t, l2, j] = e2
        a[t, l3, j] = e3
        s[j] += (e0 + e1) + (e2 + e3)
        su[j] += (u0 * e0 + u1 * e1) + (u2 * e2 + u3 * e3)
        qs[j] += (((x0 if x0 >= ZERO else NAN) + (x1 if x1 >= ZERO else NAN))
                  + ((x2 if x2 >= ZERO else NAN) + (x3 if x3 >= ZERO else NAN)))


@njit(**_FAST)
def _norm1(a, t, k0, m, P, p0, c0, cap, s):  # pragma: no cover - compiled
    """s += a[t, k0] * beta, beta = min(c0 * P[p0], cap): Eq. (1)'s normaliser."""
    for j in range(m):
        s[j] += a[t, k0, j] * min(c0 * P[p0, j], cap)


@njit(**_FAST)
def _norm4(a, t, k0, k1, k2, k3, m, P, p0, p1, p2, p3, c0, c1, c2, c3, cap,
           s):  # pragma: no cover - compiled
    """_norm1 for four classes."""
    for j in range(m):
        s[j] += ((a[t, k0, j] * min(c0 * P[p0, j], cap) + a[t, k1, j] * min(c1 * P[p1, j], cap))
                 + (a[t, k2, j] * min(c2 * P[p2, j], cap) + a[t, k3, j] * min(c3 * P[p3, j], cap)))


@njit(**_FAST)
def _belief1(a, q, out, h, t, k0, o, oo, m, P, p0, c0, cap, w0, min_prob, rg, ic, hs,
             message):  # pragma: no cover - compiled
    """Eq. (1) for class k0, straight into the output: out[t, k0] = a[t, k0] * beta *
    rg; with `message`, Eq. (3)'s message for the step before: h[0, k0] = max(q,
    min_prob) * w0 * beta * ic[t] (= e_t beta_t / c_t), hs += it."""
    for j in range(m):
        out[t, k0, oo + np.uint64(j)] = a[t, k0, j] * min(c0 * P[p0, j], cap) * rg[j]
    if message:
        for j in range(m):
            e0 = max(q[t, k0, o + np.uint64(j)], min_prob) * w0 * min(c0 * P[p0, j], cap) * ic[t, j]
            h[0, k0, j] = e0
            hs[j] += e0


@njit(**_FAST)
def _belief4(a, q, out, h, t, k0, k1, k2, k3, o, oo, m, P, p0, p1, p2, p3, c0, c1, c2, c3,
             cap, w0, w1, w2, w3, min_prob, rg, ic, hs, message):  # pragma: no cover
    """_belief1 for four classes. (Two loops: LLVM leaves one loop that writes all
    eight rows scalar.)"""
    for j in range(m):
        ooj, rgj = oo + np.uint64(j), rg[j]
        out[t, k0, ooj] = a[t, k0, j] * min(c0 * P[p0, j], cap) * rgj
        out[t, k1, ooj] = a[t, k1, j] * min(c1 * P[p1, j], cap) * rgj
        out[t, k2, ooj] = a[t, k2, j] * min(c2 * P[p2, j], cap) * rgj
        out[t, k3, ooj] = a[t, k3, j] * min(c3 * P[p3, j], cap) * rgj
    if message:
        for j in range(m):
            oj, icj = o + np.uint64(j), ic[t, j]
            e0 = max(q[t, k0, oj], min_prob) * w0 * min(c0 * P[p0, j], cap) * icj
            e1 = max(q[t, k1, oj], min_prob) * w1 * min(c1 * P[p1, j], cap) * icj
            e2 = max(q[t, k2, oj], min_prob) * w2 * min(c2 * P[p2, j], cap) * icj
            e3 = max(q[t, k3, oj], min_prob) * w3 * min(c3 * P[p3, j], cap) * icj
            h[0, k0, j] = e0
            h[0, k1, j] = e1
            h[0, k2, j] = e2
            h[0, k3, j] = e3
            hs[j] += (e0 + e1) + (e2 + e3)


@njit(**_FAST)
def _copy_row(dst, row, src, m):  # pragma: no cover - compiled
    for j in range(m):
        dst[row, j] = src[j]


@njit(**_FAST)
def _zero(x, y, z, m):  # pragma: no cover - compiled
    for j in range(m):
        x[j] = ZERO
        y[j] = ZERO
        z[j] = ZERO


@njit(**_FAST)
def _reciprocal(dst, row, s, m):  # pragma: no cover - compiled
    """dst[row] = 1 / s."""
    for j in range(m):
        dst[row, j] = ONE / s[j]


@njit(**_FAST)
def _count_bad(qs, tol, m):  # pragma: no cover - compiled
    """Pixels whose class sum differs from 1 by more than tol or is NaN (as is any sum
    that met a negative score, see _emit1)."""
    bad = 0
    for j in range(m):
        bad += not (abs(qs[j] - ONE) <= tol)
    return bad


@njit(cache=True, nogil=True)
def _run(q, out, j_start, j_stop, o_start, block, w2, u, ones_c, f_ptr, f_src, f_val, f_has,
         b_ptr, b_src, b_val, b_has, beta_max, min_prob, check, tol, a, ic, beta, h, ybuf, s,
         qs, su, su2):  # pragma: no cover - compiled; tested through smooth
    """The recursions for q's pixels j_start .. j_stop-1 (out's from o_start), `block` at
    a time. With `check`, stops at the first frame of a block where some pixel's class
    sum is off 1 by more than tol, NaN, or met a negative score, and returns how many
    such pixels it has (the output is then incomplete); else returns 0.

    w2 (T+1, C): r_t, then the start weights [pi > 0]; f_* / b_*: B^T's / B's nonzeros
    (`grouped`). Buffers: a (T, C, n); ic (T+1, n): 1 / c_t, then ones; beta, ybuf
    (C+1, n): products, row C the shared row; h (1, C, n); s, qs, su, su2 (n,).
    """
    t_len, c = q.shape[0], q.shape[1]
    c4 = c - c % 4
    for j in range(block):
        ic[t_len, j] = ONE
    for j0 in range(j_start, j_stop, block):
        m = min(block, j_stop - j0)
        o = np.uint64(j0)  # this block in q
        oo = np.uint64(j0 - j_start + o_start)  # and in out
        # Forward, Eq. (2): a_t = (B^T a_{t-1} + (u . a_{t-1}) 1) / c_{t-1} * e_t; the
        # vector u . a_t alternates between su and su2.
        su_in, su_out = su, su2
        for t in range(t_len):
            _zero(s, su_out, qs, m)
            if t == 0:  # alpha_1 ∝ q_1 / pi * pi: the score on pi's support
                _copy_row(ybuf, c, ic[t_len], m)  # ones
                it, wt = t_len, t_len
            else:
                _copy_row(ybuf, c, su_in, m)
                _products(ybuf, su_in, ones_c, a, t - 1, f_ptr, f_src, f_val, m)
                it, wt = t - 1, t
            for i in range(0, c4, 4):
                p0 = i if t > 0 and f_has[i] else c
                p1 = i + 1 if t > 0 and f_has[i + 1] else c
                p2 = i + 2 if t > 0 and f_has[i + 2] else c
                p3 = i + 3 if t > 0 and f_has[i + 3] else c
                _emit4(a, q, t, i, i + 1, i + 2, i + 3, o, m, ybuf, p0, p1, p2, p3, ic, it,
                       w2[wt, i], w2[wt, i + 1], w2[wt, i + 2], w2[wt, i + 3], u[i], u[i + 1],
                       u[i + 2], u[i + 3], min_prob, s, su_out, qs)
            for i in range(c4, c):
                p0 = i if t > 0 and f_has[i] else c
                _emit1(a, q, t, i, o, m, ybuf, p0, ic, it, w2[wt, i], u[i], min_prob, s, su_out,
                       qs)
            _reciprocal(ic, t, s, m)
            if check:
                bad_here = _count_bad(qs, tol, m)
                if bad_here:
                    return bad_here
            su_in, su_out = su_out, su_in
        # Backward, Eq. (3), and the belief, Eq. (1): h = e_{t+1} beta_{t+1} / c_{t+1}
        # (rows of h: B's sources; 1 . h in hs), beta_t = B h + u (1 . h).
        hs_in, hs_out = su, su2
        for t in range(t_len - 1, -1, -1):
            last = t == t_len - 1
            if last:  # beta_T = 1
                _copy_row(beta, c, ic[t_len], m)
                sc = ones_c
            else:
                _copy_row(beta, c, hs_in, m)
                _products(beta, hs_in, u, h, 0, b_ptr, b_src, b_val, m)
                sc = u
            _zero(s, hs_out, hs_out, m)
            for i in range(0, c4, 4):
                k0, k1, k2, k3 = i, i + 1, i + 2, i + 3
                p0, c0 = (k0, ONE) if not last and b_has[k0] else (c, sc[k0])
                p1, c1 = (k1, ONE) if not last and b_has[k1] else (c, sc[k1])
                p2, c2 = (k2, ONE) if not last and b_has[k2] else (c, sc[k2])
                p3, c3 = (k3, ONE) if not last and b_has[k3] else (c, sc[k3])
                _norm4(a, t, k0, k1, k2, k3, m, beta, p0, p1, p2, p3, c0, c1, c2, c3, beta_max, s)
            for i in range(c4, c):
                k0 = i
                p0, c0 = (k0, ONE) if not last and b_has[k0] else (c, sc[k0])
                _norm1(a, t, k0, m, beta, p0, c0, beta_max, s)
            _reciprocal(ybuf, 0, s, m)  # rg = 1 / sum, in ybuf's first row (free here)
            rg = ybuf[0]
            for i in range(0, c4, 4):
                k0, k1, k2, k3 = i, i + 1, i + 2, i + 3
                p0, c0 = (k0, ONE) if not last and b_has[k0] else (c, sc[k0])
                p1, c1 = (k1, ONE) if not last and b_has[k1] else (c, sc[k1])
                p2, c2 = (k2, ONE) if not last and b_has[k2] else (c, sc[k2])
                p3, c3 = (k3, ONE) if not last and b_has[k3] else (c, sc[k3])
                _belief4(a, q, out, h, t, k0, k1, k2, k3, o, oo, m, beta, p0, p1, p2, p3, c0,
                         c1, c2, c3, beta_max, w2[t, k0], w2[t, k1], w2[t, k2], w2[t, k3],
                         min_prob, rg, ic, hs_out, t > 0)
            for i in range(c4, c):
                k0 = i
                p0, c0 = (k0, ONE) if not last and b_has[k0] else (c, sc[k0])
                _belief1(a, q, out, h, t, k0, o, oo, m, beta, p0, c0, beta_max, w2[t, k0],
                         min_prob, rg, ic, hs_out, t > 0)
            hs_in, hs_out = hs_out, hs_in
    return 0


class Workspace:
    """One worker's buffers for blocks of `block` pixels of T frames and C classes
    (allocated once: fresh large arrays cost a page fault per 4 KiB on first touch)."""

    def __init__(self, t_len: int, c: int, block: int):
        self.key = (t_len, c, block)
        self.a = np.empty((t_len, c, block), np.float32)  # T x C x n: c_t alpha_t
        self.ic = np.empty((t_len + 1, block), np.float32)  # T+1 x n: 1 / c_t, then ones
        self.beta = np.empty((c + 1, block), np.float32)  # C+1 x n
        self.h = np.empty((1, c, block), np.float32)  # 1 x C x n (3-d: read like `a`)
        self.ybuf = np.empty((c + 1, block), np.float32)  # C+1 x n
        self.vec = np.empty((4, block), np.float32)  # s, qs, su, su2


def forward_backward(q: np.ndarray, out: np.ndarray, hmm: Model, min_prob: float,
                     tolerance: float | None, ws: Workspace, j_start: int = 0,
                     j_stop: int | None = None, out_start: int | None = None) -> bool:
    """Beliefs of q's pixels j_start .. j_stop-1 into out's pixels from out_start (default
    j_start): q (T, C, N) float32 posteriors, out (T, C, N') float32, both C-contiguous,
    in blocks of ws's size. Releases the GIL: threads may run disjoint pixel ranges of
    the same arrays at once.

    Returns False when `tolerance` is given and some pixel-frame's class sum differs from
    1 by more than it, or is NaN, or holds a negative score: the kernel stops there (the
    output is incomplete) and only flags; the caller names the place (recursions.check_probs).
    """
    t_len, c, n = q.shape
    j_stop = n if j_stop is None else int(j_stop)
    out_start = int(j_start) if out_start is None else int(out_start)
    for name, x in (("q", q), ("out", out)):
        if (x.dtype != np.float32 or x.ndim != 3 or x.shape[:2] != (t_len, c)
                or not x.flags.c_contiguous):
            raise ValueError(f"{name}: expected a C-contiguous float32 (T={t_len}, C={c}, N) "
                             f"array, found {x.dtype} {x.shape}")
    if not (0 <= j_start <= j_stop <= n and 0 <= out_start <= out.shape[2] - (j_stop - j_start)):
        raise ValueError(f"pixels {j_start}..{j_stop} of {n} into {out_start}.. of {out.shape[2]}")
    if ws.key[:2] != (t_len, c):
        raise ValueError(f"workspace for (T, C) = {ws.key[:2]} used on {(t_len, c)}")
    f, b = hmm.fwd, hmm.bwd
    s, qs, su, su2 = ws.vec
    bad = _run(
        q, out, int(j_start), j_stop, out_start, ws.key[2], hmm.w2, hmm.u, hmm.ones, f.ptr,
        f.src, f.val, f.has, b.ptr, b.src, b.val, b.has, hmm.beta_max,
        np.float32(min_prob), tolerance is not None,
        np.float32(0 if tolerance is None else tolerance), ws.a, ws.ic, ws.beta, ws.h,
        ws.ybuf, s, qs, su, su2)
    return bad == 0
