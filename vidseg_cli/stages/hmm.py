"""HMM belief over per-pixel or per-frame class posteriors (3DFCN §3.5, Eq. (1)-(4)).

One hidden label sequence l_1..l_T per pixel (or per video for frame scores), one
transition matrix A[i, j] = P(l_t = j | l_{t-1} = i) and one initial distribution
pi = P(l_1) shared by all pixels, both counted from ground truth (`TransitionCounts`).
The network gives posteriors q_t(l) = P(l_t | z_t); the observation enters the HMM as the
likelihood P(z_t | l_t) ∝ q_t(l) / P(l_t), where the prior follows Eq. (4):

    p_1 = pi,   p_t(l) = sum_k A[k, l] p_{t-1}(k)                                  (4)

Forward (Eq. (2)) and backward (Eq. (3)) recursions, scaled (Rabiner's scaling):

    alpha_t = q_t / p_t * (A^T alpha_{t-1}) / c_t          alpha_t(l) = P(l_t | Z_t)   (2)
    beta_t  = A (q_{t+1} / p_{t+1} * beta_{t+1}) / c_{t+1}                             (3)
    gamma_t = alpha_t * beta_t = P(l_t | Z_T)                                           (1)

with c_t the normaliser of alpha_t; Eq. (3)'s P(l_t | Zbar_t) is p_t * beta_t up to a
constant, and Eq. (1)'s product divided by P(l_t) is alpha_t * beta_t. Because every
step is normalised, long videos neither underflow nor overflow; posteriors of exactly
zero are read as `min_prob` (a model's softmax never gives a true zero; float16 scores
round tiny ones to it), so no observation can rule out every path; states the HMM itself
makes impossible (a zero prior) get belief 0, not NaN.

`smooth` runs this over pixels in spatial tiles sized so that the working memory stays
under `max_memory` (pixels are independent, so tiling does not change the result), on
one of two backends: on CPU a fused numba kernel (stages/hmm_kernel.py: one pass over a
cache-resident block of pixels per step, and only the transition matrix's entries above
its row floors, exactly), and torch, vectorised over pixels, on GPU, in log space, or on
request. The output may be any array-like that takes tile assignments (an h5py dataset),
so that the belief is written as it is made.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MIN_PROB",
    "DEFAULT_TOLERANCE",
    "BACKENDS",
    "ProbabilityError",
    "TileInfo",
    "TransitionCounts",
    "check_hmm",
    "check_labels",
    "check_probs",
    "plan_tiles",
    "file_reserve",
    "observation_prior",
    "prior_sequence",
    "same_classes",
    "smooth",
]

DEFAULT_MAX_MEMORY = 1 << 30  # bytes of working memory for the recursions
DEFAULT_MIN_PROB = 1e-6  # a posterior below this is read as this
DEFAULT_TOLERANCE = 1e-3  # |sum_c q - 1| allowed before the scores are refused
CPU_BLOCK = 4096  # pixels per CPU work unit of the torch backend: (C, n) arrays in L2


class ProbabilityError(ValueError):
    """Scores that are not class posteriors (NaN, negative, not summing to 1)."""


# -- fitting (counting) -----------------------------------------------------------------
def check_labels(labels: Any, num_classes: int) -> np.ndarray:
    """`labels` as an integer array whose values all lie in 0..num_classes-1; ValueError
    otherwise (a label outside the class list is a broken file, never a class)."""
    lab = np.asarray(labels)
    if lab.dtype.kind not in "ui":
        raise ValueError(f"labels must be integer class indices, found dtype {lab.dtype}")
    if lab.size:
        lo, hi = int(lab.min()), int(lab.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"label value {bad} is outside the {num_classes} classes "
                             f"(0..{num_classes - 1})")
    return lab


class TransitionCounts:
    """First-label and transition counts over label sequences, for P(l_1) and
    P(l_t | l_{t-1}) (3DFCN §3.5: "estimated from ground truth label").

    Every pixel of a (T, H, W) label volume is one sequence along time; a (T,) array of
    per-frame labels is one sequence.
    """

    def __init__(self, num_classes: int):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.first = np.zeros(self.num_classes, np.int64)  # (C,)
        self.pairs = np.zeros((self.num_classes, self.num_classes), np.int64)  # (C, C) from, to
        self.sequences = 0

    def add(self, labels: np.ndarray, frames_per_chunk: int = 64) -> None:
        """Count one video's labels: (T,) or (T, H, W) (any trailing shape) class indices."""
        lab = check_labels(labels, self.num_classes)
        if lab.ndim == 0 or lab.shape[0] == 0:
            return
        c = self.num_classes
        lab = lab.reshape(lab.shape[0], -1)  # T x P
        self.first += np.bincount(lab[0], minlength=c)
        self.sequences += lab.shape[1]
        # Transitions chunk by chunk of frames so the int64 pair codes stay small.
        step = max(1, int(frames_per_chunk))
        for t0 in range(1, lab.shape[0], step):
            t1 = min(lab.shape[0], t0 + step)
            code = lab[t0 - 1 : t1 - 1].astype(np.int64) * c + lab[t0:t1]  # (t, P) from*C+to
            self.pairs += np.bincount(code.ravel(), minlength=c * c).reshape(c, c)

    def merge(self, other: TransitionCounts) -> None:
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge counts over {other.num_classes} and {self.num_classes} classes")
        self.first += other.first
        self.pairs += other.pairs
        self.sequences += other.sequences

    def estimate(self, smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(prior (C,), transition (C, C)) by additive (Lidstone) smoothing:
        (n + s) / (N + C s). With s = 0, a class never left in the data keeps a
        self-transition (its row is otherwise undefined), and a prior with no counts at
        all is uniform."""
        if smoothing < 0 or not math.isfinite(smoothing):
            raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing}")
        c = self.num_classes
        first = self.first.astype(np.float64) + smoothing
        prior = first / first.sum() if first.sum() > 0 else np.full(c, 1.0 / c)
        rows = self.pairs.astype(np.float64) + smoothing
        sums = rows.sum(axis=1, keepdims=True)
        empty = sums[:, 0] == 0
        rows[empty] = np.eye(c)[empty]
        sums[empty] = 1.0
        return prior, rows / sums

    def unseen(self) -> list[int]:
        """Classes never seen at all (neither first nor in any transition)."""
        seen = (self.first > 0) | (self.pairs.sum(0) > 0) | (self.pairs.sum(1) > 0)
        return [int(i) for i in np.flatnonzero(~seen)]


def check_hmm(prior: np.ndarray, transition: np.ndarray, tol: float = 1e-6) -> None:
    """Raise ValueError unless prior (C,) and transition (C, C) are distributions."""
    prior = np.asarray(prior, np.float64)
    a = np.asarray(transition, np.float64)
    if prior.ndim != 1 or a.shape != (prior.size, prior.size):
        raise ValueError(f"prior {prior.shape} and transition {a.shape} don't fit (expected (C,), (C, C))")
    for name, x in (("prior", prior), ("transition", a)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} has NaN or infinite entries")
        if np.any(x < 0):
            raise ValueError(f"{name} has negative entries (min {x.min():.3g})")
    s = prior.sum()
    if abs(s - 1) > tol:
        raise ValueError(f"prior sums to {s:.6g}, expected 1")
    rows = a.sum(axis=1)
    bad = np.flatnonzero(np.abs(rows - 1) > tol)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"transition row {i} sums to {rows[i]:.6g}, expected 1 (rows are P(l_t | l_(t-1)); "
            f"{bad.size} bad row(s))"
        )


def prior_sequence(prior: np.ndarray, transition: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, C) priors P(l_t) of Eq. (4): p_1 = prior, p_t = A^T p_{t-1}."""
    a = np.asarray(transition, np.float64)
    p = np.empty((max(num_frames, 0), a.shape[0]), np.float64)  # T x C
    if num_frames > 0:
        p[0] = prior
        for t in range(1, num_frames):
            p[t] = p[t - 1] @ a
    return p


SCORE_PRIORS = ("hmm", "uniform")


def observation_prior(prior: np.ndarray, transition: np.ndarray, num_frames: int,
                      score_prior: str = "hmm") -> np.ndarray:
    """(T, C) class priors the network's posteriors are divided by to give the
    observation likelihood P(z_t | l_t) ∝ q_t(l) / prior_t(l).

    "hmm": P(l_t) of Eq. (4) (3DFCN §3.5), right when the network's posteriors are
    calibrated to the data the HMM was counted from. "uniform": the posteriors are the
    likelihoods (up to a constant), right for networks trained with class-balancing
    weights or action-centred sampling, whose posteriors carry a near-flat prior:
    dividing those by a 2 % foreground prior would turn every faint response into
    foreground. States the HMM makes impossible (P(l_t) = 0) stay impossible either way."""
    p = prior_sequence(prior, transition, num_frames)
    if score_prior == "hmm":
        return p
    if score_prior == "uniform":
        return (p > 0).astype(np.float64)
    raise ValueError(f"score_prior must be one of {SCORE_PRIORS}, got {score_prior!r}")


def _start_weights(prior: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(C,) weights of alpha_1 ∝ q_1 * pi / p_1 (Eq. (2) at t = 1), scaled to max 1:
    [pi > 0] when p_1 = pi (the paper's prior), pi itself for a uniform one."""
    w = np.zeros_like(prior)
    np.divide(prior, p[0], out=w, where=p[0] > 0)
    top = w.max()
    return w / top if top > 0 else w


def _emission_weights(p: np.ndarray) -> np.ndarray:
    """(T, C) weights 1 / P(l_t), 0 where P(l_t) = 0 (a state the HMM can't be in), each
    row scaled to max 1 (a per-frame constant cancels in the normalised recursions and
    keeps float32 in range)."""
    r = np.zeros_like(p)
    np.divide(1.0, p, out=r, where=p > 0)
    top = r.max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return r / top


# -- tiling -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TileInfo:
    """Spatial tiles of a (T, C, H, W) volume: `rows` x `cols` pixels each."""

    rows: int
    cols: int
    bytes_per_pixel: int
    count: int


def plan_tiles(
    shape: tuple[int, ...], in_itemsize: int, max_memory: int | None, compute_itemsize: int = 4,
    log_space: bool = False, out_itemsize: int | None = None, reserve: int = 0,
) -> TileInfo:
    """Tiles whose working memory fits `max_memory` bytes; whole rows when possible.

    Per pixel a tile holds, over T x C: the input slice, its float copy and the forward
    messages (in log space also the log-likelihoods and the C x C terms of one step), and,
    when `out_itemsize` is given (the output is written tile by tile through a buffer),
    that float buffer and its cast to the output's dtype when that differs. `reserve`
    bytes are set aside first for what does not scale with the tile (the input file's
    decompressed chunks)."""
    t, c = int(shape[0]), int(shape[1])
    h, w = (int(shape[2]), int(shape[3])) if len(shape) == 4 else (1, 1)
    if log_space:
        per_pixel = t * c * (in_itemsize + 3 * 8) + 2 * c * c * 8 + 4 * c * 8
    else:
        per_pixel = t * c * (in_itemsize + 2 * compute_itemsize) + 4 * t * compute_itemsize
    if out_itemsize is not None:
        per_pixel += t * c * (compute_itemsize + (out_itemsize if out_itemsize != compute_itemsize else 0))
    if max_memory is None or max_memory <= 0:
        return TileInfo(h, w, per_pixel, 1)
    pixels = (max_memory - max(int(reserve), 0)) // max(per_pixel, 1)
    if pixels < 1:
        need = per_pixel + max(int(reserve), 0)
        raise ValueError(
            f"max_memory of {max_memory} bytes is too small: one pixel of {t} frames x {c} "
            f"classes needs {need} bytes"
        )
    if pixels >= w:
        rows, cols = int(min(h, pixels // w)), w
    else:
        rows, cols = 1, int(pixels)
    count = math.ceil(h / rows) * math.ceil(w / cols)
    return TileInfo(rows, cols, per_pixel, count)


def file_reserve(probs: Any) -> int:
    """Bytes a tiled pass over an HDF5 input holds besides its tiles: a tile of rows
    decompresses whole chunks, one at a time, and h5py's chunk cache (1 MiB) keeps those
    that fit; nothing for a numpy array."""
    chunks = None if isinstance(probs, np.ndarray) else getattr(probs, "chunks", None)
    if not chunks:
        return 0
    chunk = math.prod(chunks) * np.dtype(probs.dtype).itemsize
    return chunk + min(chunk, 1 << 20)


# -- validation of posteriors -----------------------------------------------------------
def _at(place: str) -> str:
    return f" at {place}" if place else ""


def check_probs(q: Any, where: Callable[[int], str], tol: float, first_frame: int = 0) -> None:
    """Raise ProbabilityError unless q, a (T, C, n) tensor, holds posteriors (finite,
    >= 0, summing to 1 +- tol over C); `where(j)` names pixel j, `first_frame` is q[0]'s
    frame index."""
    import torch

    s = q.sum(dim=1)  # T x n; NaN and inf propagate into it
    bad_sum = ~(torch.abs(s - 1) <= tol)
    neg = bool((q.amin() < 0).item()) if q.numel() else False
    if not bool(bad_sum.any()) and not neg:
        return
    if not bool(torch.isfinite(q).all()):
        idx = torch.nonzero(~torch.isfinite(q))[0].tolist()
        raise ProbabilityError(f"frame {first_frame + idx[0]}: NaN or infinite score{_at(where(idx[2]))}")
    if neg:
        idx = torch.nonzero(q < 0)[0].tolist()
        v = float(q[idx[0], idx[1], idx[2]])
        raise ProbabilityError(f"frame {first_frame + idx[0]}: negative score {v:.4g}{_at(where(idx[2]))}")
    ti, j = torch.nonzero(bad_sum)[0].tolist()
    raise ProbabilityError(
        f"frame {first_frame + ti}: class probabilities sum to {float(s[ti, j]):.6g}{_at(where(j))}, "
        f"expected 1 (tolerance {tol:g}); are these softmax scores?"
    )


# -- the recursions ---------------------------------------------------------------------
class _Workspace:
    """Buffers reused from block to block: fresh large allocations cost a page fault per
    4 KiB on first touch, as much as the arithmetic on them."""

    def __init__(self) -> None:
        self.buffers: dict[str, Any] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Any) -> Any:
        import torch

        size = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < size or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(size, dtype=like.dtype, device=like.device)
            self.buffers[name] = buf
        return buf[:size].view(shape)


def _forward_backward(q: Any, fwd: Any, bwd: Any, start: Any, guard: bool,
                      ws: _Workspace | None = None) -> Any:
    """Belief P(l_t | Z_T) for a block of pixels.

    q: (T, C, n) posteriors (contiguous, already floored at min_prob).
    fwd[t] = diag(r_t) A^T, bwd[t] = A diag(r_{t+1}) with r_t ∝ 1 / P(l_t)   (C, C)
    start: (C, 1) 1 where pi > 0, else 0 (alpha_1 ∝ q_1 / pi * pi).
    Returns gamma (T, C, n), in a workspace buffer when `ws` is given.
    """
    import torch

    t_len, c, n = q.shape
    ws = ws or _Workspace()
    alpha = ws.get("alpha", (t_len, c, n), q)  # T x C x n
    inv_c = ws.get("inv_c", (t_len, 1, n), q)  # 1 / c_t
    # Per-frame views, made once (indexing in the loop costs as much as a small op).
    qs, al, ic = q.unbind(0), alpha.unbind(0), inv_c.unbind(0)  # T x (C x n), T x (1 x n)
    fw, bw = fwd.unbind(0), bwd.unbind(0)
    # Forward, Eq. (2).
    torch.mul(qs[0], start, out=al[0])
    torch.sum(al[0], dim=0, keepdim=True, out=ic[0])
    ic[0].reciprocal_()
    al[0].mul_(ic[0])
    for t in range(1, t_len):
        torch.mm(fw[t], al[t - 1], out=al[t])  # C x n: sum_k A[k,l] r_t(l) alpha(k)
        al[t].mul_(qs[t])
        torch.sum(al[t], dim=0, keepdim=True, out=ic[t])
        ic[t].reciprocal_()
        al[t].mul_(ic[t])
    # Backward, Eq. (3), scaled by the forward normalisers, and Eq. (1) as we go:
    # gamma_t = alpha_t * beta_t sums to 1 over classes with Rabiner's scaling.
    beta = ws.get("beta", (c, n), q)  # C x n
    h = ws.get("h", (c, n), q)
    for t in range(t_len - 2, -1, -1):
        if t == t_len - 2:
            torch.mul(qs[t + 1], ic[t + 1], out=h)  # beta_T = 1
        else:
            torch.mul(qs[t + 1], beta, out=h)
            h.mul_(ic[t + 1])
        torch.mm(bw[t], h, out=beta)
        if guard:
            # States the HMM makes unreachable carry alpha = 0 and an unbounded beta;
            # keep beta finite so 0 * beta stays 0 in the next product.
            beta.clamp_(max=1e30)
        al[t].mul_(beta)
    # In exact arithmetic gamma already sums to 1; in float32 the scaled beta drifts by a
    # common factor over thousands of frames (~1e-5 at T = 3000), so renormalise.
    norm = ws.get("norm", (t_len, 1, n), q)  # T x 1 x n
    torch.sum(alpha, dim=1, keepdim=True, out=norm)
    alpha.mul_(norm.reciprocal_())
    return alpha


def _forward_backward_log(q: Any, log_a: Any, log_r: Any, start: Any) -> Any:
    """The same belief in log space (float64): exact over any range, for frame scores
    and on request for pixels. q: (T, C, n) floored posteriors; log_a: (C, C) log A;
    log_r: (T, C, 1) -log P(l_t) (-inf where P(l_t) = 0); start: (C, 1) pi > 0."""
    import torch

    t_len, c, n = q.shape
    ninf = torch.tensor(float("-inf"), dtype=q.dtype, device=q.device)
    le = torch.log(q) + log_r  # T x C x n: log q_t / P(l_t)
    fa = torch.empty_like(q)  # T x C x n
    fa[0] = torch.where(start > 0, torch.log(q[0]) + torch.log(start), ninf)  # alpha_1 ∝ q_1 pi / p_1
    fa[0] -= torch.logsumexp(fa[0], dim=0, keepdim=True)
    la = log_a[:, :, None]  # C(from) x C(to) x 1
    for t in range(1, t_len):
        fa[t] = le[t] + torch.logsumexp(fa[t - 1][:, None, :] + la, dim=0)  # Eq. (2)
        fa[t] -= torch.logsumexp(fa[t], dim=0, keepdim=True)
    fb = torch.zeros((c, n), dtype=q.dtype, device=q.device)  # log beta_T = 0
    for t in range(t_len - 2, -1, -1):
        fb = torch.logsumexp(la + (le[t + 1] + fb)[None, :, :], dim=1)  # Eq. (3)
        fb = fb - torch.logsumexp(fb, dim=0, keepdim=True)
        fa[t] += fb
    return torch.softmax(fa, dim=1)  # Eq. (1)


def _device(device: Any) -> Any:
    from vidseg_cli.runtime import resolve_device

    return resolve_device("auto" if device is None else str(device))


BACKENDS = ("auto", "numba", "torch")


def smooth(
    probs: Any,
    prior: np.ndarray,
    transition: np.ndarray,
    *,
    out: Any = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    device: Any = "cpu",
    min_prob: float = DEFAULT_MIN_PROB,
    tolerance: float | None = DEFAULT_TOLERANCE,
    threads: int = 1,
    dtype: Any = None,
    log_space: bool | None = None,
    progress: Callable[[int], None] | None = None,
    backend: str = "auto",
    score_prior: str = "hmm",
    plan: TileInfo | None = None,
) -> Any:
    """HMM belief P(l_t | Z_T) (3DFCN §3.5, Eq. (1)-(4)) of per-pixel scores (T, C, H, W)
    or per-frame scores (T, C).

    probs: anything sliced like a numpy array (a numpy array, an h5py dataset): only one
        tile is read at a time (a C-contiguous float32 numpy array is used in place).
        Softmax posteriors over C classes.
    prior (C,), transition (C, C): P(l_1) and P(l_t = j | l_{t-1} = i) in row i, col j.
    out: where to write the belief (same shape; float16/32): a numpy array, or anything
        that takes `out[:, :, ys, xs] = tile` (an h5py dataset: the belief is then never
        held whole); a new float32 array if None. Returned.
    max_memory: bytes of working memory per tile (None: one tile).
    device: "cpu", "cuda", "cuda:1", "auto" or a torch.device.
    min_prob: posteriors below this are read as this.
    tolerance: refuse (ProbabilityError) scores whose class sums differ from 1 by more,
        or that hold NaN or negative values; None skips the check.
    threads: CPU worker threads over pixel blocks.
    dtype: compute dtype (torch) of the scaled recursions; float32 by default.
    log_space: run the recursions in float64 log space: exact over any range, several
        times slower. Default: for frame scores only. The scaled float32 recursions are
        exact for HMMs without zeros (what hmm-fit's smoothing gives); an HMM with zero
        transitions can make the filtered and smoothed beliefs differ by more than
        float32's range over long videos, and then needs log space.
    progress: called with the number of tiles done.
    plan: the tiles to use (`plan_tiles`), instead of planning them from max_memory: a
        caller that chunks its output file like the tiles passes the plan it chunked by.
    backend: "numba" (the fused CPU kernel of stages/hmm_kernel.py), "torch" (CPU or
        GPU, and log space), or "auto": numba for the scaled float32 recursions on CPU,
        else torch.
    score_prior: what the posteriors are divided by (`observation_prior`): "hmm" (Eq. (4),
        the paper) or "uniform" (posteriors used as likelihoods).
    """
    import torch

    shape = tuple(probs.shape)
    if len(shape) not in (2, 4):
        raise ValueError(f"expected scores of shape (T, C) or (T, C, H, W), found {shape}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if score_prior not in SCORE_PRIORS:
        raise ValueError(f"score_prior must be one of {', '.join(SCORE_PRIORS)}, got {score_prior!r}")
    t_len, c = shape[0], shape[1]
    prior = np.asarray(prior, np.float64)
    transition = np.asarray(transition, np.float64)
    if prior.shape != (c,) or transition.shape != (c, c):
        raise ValueError(
            f"the HMM has {prior.size} classes (prior {prior.shape}, transition "
            f"{transition.shape}), the scores {c}"
        )
    check_hmm(prior, transition)
    frame_level = len(shape) == 2
    dev = _device(device)
    if log_space is None:
        log_space = frame_level
    if log_space:
        dtype = torch.float64
    elif dtype is None:
        dtype = torch.float32
    if backend == "auto":
        backend = "numba" if dev.type == "cpu" and dtype == torch.float32 else "torch"
    elif backend == "numba" and (dev.type != "cpu" or dtype != torch.float32):
        raise ValueError("the numba kernel runs the scaled float32 recursions on CPU; "
                         "use backend='torch' for another device, dtype or log space")
    if out is None:
        out = np.empty(shape, np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    elif np.dtype(out.dtype) not in (np.float16, np.float32, np.float64):
        raise ValueError(f"out must be float16, float32 or float64, found {out.dtype}")
    if t_len == 0 or math.prod(shape) == 0:
        return out

    in_itemsize = np.dtype(getattr(probs, "dtype", np.float32)).itemsize
    compute_itemsize = torch.empty((), dtype=dtype).element_size()
    if frame_level:
        tiles = [(slice(0, 1), slice(0, 1))]
        width = 1
    else:
        h, width = shape[2], shape[3]
        if plan is None:
            # Written in place only into a C-contiguous float32 array (the numba kernel's
            # output); anything else goes through a float32 tile buffer and a cast.
            buffered = (_tile_view(out, False, slice(0, 1), slice(0, width)) is None
                        or np.dtype(out.dtype) != np.float32)
            plan = plan_tiles(shape, in_itemsize, max_memory, compute_itemsize, log_space,
                              out_itemsize=np.dtype(out.dtype).itemsize if buffered else None,
                              reserve=file_reserve(probs))
        tiles = [
            (slice(y, min(h, y + plan.rows)), slice(x, min(width, x + plan.cols)))
            for y in range(0, h, plan.rows)
            for x in range(0, width, plan.cols)
        ]
    threads = max(1, int(threads))
    if backend == "numba":
        _smooth_numba(probs, out, prior, transition, tiles, frame_level, min_prob,
                      tolerance, threads, progress, score_prior)
        return out

    rec = _Recursions(prior, transition, t_len, dev, dtype, log_space, min_prob, tolerance,
                      score_prior)
    old_threads = torch.get_num_threads()
    on_cpu = dev.type == "cpu"
    if on_cpu:
        # Parallel over pixel blocks, never inside an op: torch's intra-op threads cost
        # more than they give on (C, 4096) arrays.
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(threads) if on_cpu and threads > 1 else None
    tile_buf = None
    try:
        for ys, xs in tiles:
            if frame_level:
                block_np = np.asarray(probs[:, :])[:, :, None, None]  # T x C x 1 x 1
            else:
                block_np = np.asarray(probs[:, :, ys, xs])  # T x C x h x w
            th, tw = block_np.shape[2], block_np.shape[3]
            n = th * tw
            q_all = torch.from_numpy(np.ascontiguousarray(block_np)).reshape(t_len, c, n)
            # Write straight into `out` when it is an array and the tile a view of it
            # (whole rows), else through a tile buffer.
            target = _tile_view(out, frame_level, ys, xs)
            if target is None:  # one buffer, reused while the tile size stays (as _smooth_numba)
                if tile_buf is None or tile_buf.shape[2] != n:
                    tile_buf = np.empty((t_len, c, n), out.dtype)
                target = tile_buf
            block = n if not on_cpu else CPU_BLOCK
            jobs = [
                (q_all[:, :, j0 : j0 + block], target[:, :, j0 : j0 + block],
                 _Place(frame_level, ys.start, xs.start, tw, j0))
                for j0 in range(0, n, block)
            ]
            if pool is not None and len(jobs) > 1:
                for f in [pool.submit(rec.block, *job) for job in jobs]:
                    f.result()
            else:
                for job in jobs:
                    rec.block(*job)
            _store_tile(out, target, frame_level, ys, xs)
            block_np = q_all = target = jobs = None  # not held while the next tile is read
            if progress is not None:
                progress(1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if on_cpu:
            torch.set_num_threads(old_threads)
    return out


def _tile_view(x: Any, frame_level: bool, ys: slice, xs: slice,
               dtype: Any = None) -> np.ndarray | None:
    """x[:, :, ys, xs] as a (T, C, n) view when `x` is a C-contiguous numpy array (of
    `dtype`, if given) and the tile whole rows (a run of each class plane's pixels); else
    None."""
    if not isinstance(x, np.ndarray) or not x.flags.c_contiguous:
        return None
    if dtype is not None and x.dtype != dtype:
        return None
    t_len, c = x.shape[0], x.shape[1]
    if frame_level:
        return x.reshape(t_len, c, 1)
    if xs.start != 0 or xs.stop != x.shape[3]:
        return None
    return x[:, :, ys, :].reshape(t_len, c, -1)  # T x C x n, a view


def _smooth_numba(probs: Any, out: Any, prior: np.ndarray, transition: np.ndarray,
                  tiles: list[tuple[slice, slice]], frame_level: bool,
                  min_prob: float, tolerance: float | None, threads: int,
                  progress: Callable[[int], None] | None, score_prior: str = "hmm") -> None:
    """`smooth` on the fused CPU kernel (stages/hmm_kernel.py), which reads (T, C, N)
    float32 scores and writes (T, C, N) float32 beliefs over a run of pixels of C-contiguous
    arrays. A C-contiguous float32 numpy input or output is used in place when every tile
    is whole rows (a run of its pixels); anything else goes through a tile buffer, cast
    tile by tile."""
    import torch

    t_len, c = probs.shape[0], probs.shape[1]
    everything = (slice(0, 1), slice(0, 1)) if frame_level else (
        slice(0, probs.shape[2]), slice(0, probs.shape[3]))
    whole_rows = frame_level or all(xs == everything[1] for _, xs in tiles)
    q_all = _tile_view(probs, frame_level, *everything, np.float32) if whole_rows else None
    o_all = _tile_view(out, frame_level, *everything, np.float32) if whole_rows else None
    if q_all is not None and o_all is not None and np.shares_memory(q_all, o_all):
        o_all = None  # writing over the input would feed beliefs back as scores
    kernel = _Kernel(prior, transition, t_len, c, min_prob, tolerance, threads, score_prior)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the float16 casts
    # Tile buffers are reused, not reallocated per tile: fresh tile-sized arrays of
    # alternating sizes fragment the heap, and the process then holds well over the budget.
    q_buf = o_buf = raw_buf = cast_buf = None
    try:
        for ys, xs in tiles:
            tw = 1 if frame_level else xs.stop - xs.start
            n = 1 if frame_level else (ys.stop - ys.start) * tw
            j0 = 0 if frame_level else ys.start * tw  # the tile's first pixel (whole rows)
            if q_all is not None:
                q, q0 = q_all, j0
            else:
                raw_buf = _read_tile(probs, raw_buf, frame_level, ys, xs)
                raw = raw_buf if raw_buf is not None else np.asarray(
                    probs[:, :] if frame_level else probs[:, :, ys, xs])
                q, q0 = raw.reshape(t_len, c, n), 0
                if q.dtype != np.float32 or not q.flags.c_contiguous:
                    q = q_buf = _cast_into(q_buf, q, np.float32)
            if o_all is not None:
                o, o0 = o_all, j0
            else:
                if o_buf is None or o_buf.shape[2] != n:
                    o_buf = np.empty((t_len, c, n), np.float32)
                o, o0 = o_buf, 0
            if not kernel.run(q, o, q0, q0 + n, o0):
                # The kernel only flags (and stops): name the first bad frame and pixel of
                # the tile; should the torch check, summing in another order, pass a
                # borderline tile, run it unchecked.
                check_probs(torch.from_numpy(q[:, :, q0 : q0 + n]),
                            _Place(frame_level, ys.start, xs.start, tw, 0), tolerance)
                kernel.run(q, o, q0, q0 + n, o0, check=False)
            if o_all is None:
                cast_buf = _store_tile(out, o, frame_level, ys, xs, cast_buf)
            raw = q = o = None  # not held while the next tile is read
            if progress is not None:
                progress(1)
    finally:
        torch.set_num_threads(old_threads)
        kernel.close()


def _cast_into(buf: np.ndarray | None, src: np.ndarray, dtype: Any) -> np.ndarray:
    """src cast to `dtype` in `buf`, reallocated unless it has src's shape and that dtype.
    To or from float16 the cast runs on the torch side: numpy's is ~20x slower."""
    if buf is None or buf.shape != src.shape or buf.dtype != dtype:
        buf = np.empty(src.shape, dtype)
    if np.float16 in (src.dtype, buf.dtype):
        import torch

        torch.from_numpy(buf).copy_(torch.from_numpy(np.ascontiguousarray(src)))
    else:
        np.copyto(buf, src, casting="unsafe")
    return buf


def _read_tile(probs: Any, buf: np.ndarray | None, frame_level: bool, ys: slice,
               xs: slice) -> np.ndarray | None:
    """probs[:, :, ys, xs] read into `buf` (or a new array kept for the next tile) when
    `probs` is an h5py dataset; None for anything else (the caller slices it)."""
    if frame_level or not hasattr(probs, "read_direct"):
        return None
    shape = (probs.shape[0], probs.shape[1], ys.stop - ys.start, xs.stop - xs.start)
    if buf is None or buf.shape != shape:
        buf = np.empty(shape, probs.dtype)
    probs.read_direct(buf, np.s_[:, :, ys, xs])
    return buf


def _store_tile(out: Any, tile: np.ndarray, frame_level: bool, ys: slice, xs: slice,
                buf: np.ndarray | None = None) -> np.ndarray | None:
    """out[:, :, ys, xs] = tile ((T, C, n)), cast to out's dtype (float16 on the torch
    side) in `buf` when it fits; nothing to do when the tile is a view of `out`; `out` may
    be an h5py dataset. Returns the cast buffer, for the next tile."""
    if isinstance(out, np.ndarray) and np.shares_memory(tile, out):
        return buf
    t_len, c = out.shape[0], out.shape[1]
    if out.dtype != tile.dtype:
        tile = buf = _cast_into(buf, tile, out.dtype)
    if frame_level:
        out[:, :] = tile.reshape(t_len, c)
    else:
        out[:, :, ys, xs] = tile.reshape(t_len, c, ys.stop - ys.start, xs.stop - xs.start)
    return buf


class _Kernel:
    """The numba kernel over pixel ranges, split into jobs for `threads` worker threads
    (the kernel releases the GIL), each with its own buffers."""

    def __init__(self, prior: np.ndarray, transition: np.ndarray, t_len: int, c: int,
                 min_prob: float, tolerance: float | None, threads: int,
                 score_prior: str = "hmm") -> None:
        from vidseg_cli.stages import hmm_kernel as hk

        self.hk = hk
        p = observation_prior(prior, transition, t_len, score_prior)  # T x C, Eq. (4)
        self.model = hk.model(prior, transition, _emission_weights(p), _start_weights(prior, p))
        self.shape = (t_len, c)
        self.block = hk.block_size(t_len, c)
        self.min_prob, self.tolerance = min_prob, tolerance
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.local = threading.local()

    def _one(self, q: np.ndarray, o: np.ndarray, j0: int, j1: int, o0: int, check: bool) -> bool:
        ws = getattr(self.local, "ws", None)
        if ws is None:
            ws = self.local.ws = self.hk.Workspace(*self.shape, self.block)
        return self.hk.forward_backward(q, o, self.model, self.min_prob,
                                        self.tolerance if check else None, ws, j0, j1, o0)

    def run(self, q: np.ndarray, o: np.ndarray, j0: int, j1: int, o0: int,
            check: bool = True) -> bool:
        """Beliefs of q's pixels j0..j1-1 into o's pixels from o0; False if the check
        failed somewhere (the output is then incomplete)."""
        n = j1 - j0
        if self.pool is None or n <= self.block:
            return self._one(q, o, j0, j1, o0, check)
        # Several jobs per thread, whole blocks each, so that a thread slowed by other
        # load doesn't hold up the rest.
        per = max(self.block, -(-n // (4 * self.threads)) // self.block * self.block)
        jobs = [self.pool.submit(self._one, q, o, a, min(j1, a + per), o0 + a - j0, check)
                for a in range(j0, j1, per)]
        return all([f.result() for f in jobs])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


@dataclass(frozen=True)
class _Place:
    """Names pixel j of a block, for error messages."""

    frame_level: bool
    y0: int
    x0: int
    tile_width: int
    offset: int

    def __call__(self, j: int) -> str:
        if self.frame_level:
            return ""
        k = self.offset + j
        return f"pixel (y={self.y0 + k // self.tile_width}, x={self.x0 + k % self.tile_width})"


class _Recursions:
    """The per-frame constants of Eq. (2)-(4), shared by every pixel, and the recursions
    over one block of pixels."""

    def __init__(self, prior, transition, t_len, dev, dtype, log_space, min_prob, tolerance,
                 score_prior: str = "hmm") -> None:
        import torch

        self.dev, self.dtype, self.log_space = dev, dtype, log_space
        self.min_prob, self.tolerance = min_prob, tolerance
        self.itemsize = torch.empty((), dtype=dtype).element_size()
        p = observation_prior(prior, transition, t_len, score_prior)  # T x C, Eq. (4)
        r = _emission_weights(p)  # T x C ∝ 1 / P(l_t)
        fwd = np.ascontiguousarray(r[:, :, None] * transition.T[None])  # T x C x C: diag(r_t) A^T
        bwd = np.zeros_like(fwd)
        bwd[:-1] = transition[None] * r[1:, None, :]  # A diag(r_{t+1})
        self.fwd = torch.from_numpy(fwd).to(dev, dtype)
        self.bwd = torch.from_numpy(bwd).to(dev, dtype)
        self.start = torch.from_numpy(_start_weights(prior, p)[:, None]).to(dev, dtype)  # C x 1
        self.guard = bool((transition == 0).any() or (prior == 0).any())
        if log_space:
            with np.errstate(divide="ignore"):
                self.log_a = torch.from_numpy(np.log(transition)).to(dev, dtype)  # C x C
                neg_log_p = np.where(p > 0, -np.log(p), -np.inf)  # r = 0 where P(l_t) = 0
            self.log_r = torch.from_numpy(neg_log_p[:, :, None]).to(dev, dtype)  # T x C x 1
        self._workspaces: dict[int, _Workspace] = {}  # one per thread

    def block(self, q_src: Any, target: np.ndarray, where: Callable[[int], str]) -> None:
        """Belief of one block: q_src (T, C, m) tensor view of the scores -> target."""
        import torch

        ws = self._workspaces.setdefault(threading.get_ident(), _Workspace())
        q = q_src.to(self.dev, self.dtype)  # T x C x m
        if self.tolerance is not None:
            check_probs(q, where, self.tolerance)
        qc = ws.get("q", tuple(q.shape), q)  # a private contiguous copy
        torch.clamp(q, min=self.min_prob, out=qc)
        if self.log_space:
            g = _forward_backward_log(qc, self.log_a, self.log_r, self.start)  # T x C x m
        else:
            g = _forward_backward(qc, self.fwd, self.bwd, self.start, self.guard, ws)
        torch.from_numpy(target).copy_(g)  # to the host, in target's dtype


def same_classes(a: Sequence[str] | None, b: Sequence[str] | None) -> str | None:
    """None if two class lists are equal, else a short description of the difference."""
    a, b = list(a or []), list(b or [])
    if a == b:
        return None
    if len(a) != len(b):
        return f"{len(a)} classes vs {len(b)}"
    i = next(k for k in range(len(a)) if a[k] != b[k])
    return f"class {i} is '{a[i]}' vs '{b[i]}'"
