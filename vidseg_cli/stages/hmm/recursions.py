"""The HMM's per-frame constants (Eq. (4)) and the forward-backward recursions of 3DFCN
§3.5 (Eq. (1)-(3)) in torch, scaled float32/64 or in log space, over blocks of pixels;
with the check that the network's scores are posteriors."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_MIN_PROB = 1e-6  # a posterior below this is read as this
DEFAULT_TOLERANCE = 1e-3  # |sum_c q - 1| allowed before the scores are refused


class ProbabilityError(ValueError):
    """Scores that are not class posteriors (NaN, negative, not summing to 1)."""


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


def start_weights(prior: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(C,) weights of alpha_1 ∝ q_1 * pi / p_1 (Eq. (2) at t = 1), scaled to max 1:
    [pi > 0] when p_1 = pi (the paper's prior), pi itself for a uniform one."""
    w = np.zeros_like(prior)
    np.divide(prior, p[0], out=w, where=p[0] > 0)
    top = w.max()
    return w / top if top > 0 else w


def emission_weights(p: np.ndarray) -> np.ndarray:
    """(T, C) weights 1 / P(l_t), 0 where P(l_t) = 0 (a state the HMM can't be in), each
    row scaled to max 1 (a per-frame constant cancels in the normalised recursions and
    keeps float32 in range)."""
    r = np.zeros_like(p)
    np.divide(1.0, p, out=r, where=p > 0)
    top = r.max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return r / top



# -- validation of posteriors -----------------------------------------------------------
def _at(place: str) -> str:
    return f" at {place}" if place else ""


def check_probs(q: Any, where: Callable[[int], str], tol: float, first_frame: int = 0) -> None:
    """Raise ProbabilityError unless q, a (T, C, n) tensor, holds posteriors (finite,
    >= 0, summing to 1 +- tol over C); `where(j)` names pixel j, `first_frame` is q[0]'s
    frame index."""
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


@dataclass(frozen=True)
class Place:
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


class Recursions:
    """The per-frame constants of Eq. (2)-(4), shared by every pixel, and the recursions
    over one block of pixels."""

    def __init__(self, prior, transition, t_len, dev, dtype, log_space, min_prob, tolerance,
                 score_prior: str = "hmm") -> None:
        self.dev, self.dtype, self.log_space = dev, dtype, log_space
        self.min_prob, self.tolerance = min_prob, tolerance
        self.itemsize = torch.empty((), dtype=dtype).element_size()
        p = observation_prior(prior, transition, t_len, score_prior)  # T x C, Eq. (4)
        r = emission_weights(p)  # T x C ∝ 1 / P(l_t)
        fwd = np.ascontiguousarray(r[:, :, None] * transition.T[None])  # T x C x C: diag(r_t) A^T
        bwd = np.zeros_like(fwd)
        bwd[:-1] = transition[None] * r[1:, None, :]  # A diag(r_{t+1})
        self.fwd = torch.from_numpy(fwd).to(dev, dtype)
        self.bwd = torch.from_numpy(bwd).to(dev, dtype)
        self.start = torch.from_numpy(start_weights(prior, p)[:, None]).to(dev, dtype)  # C x 1
        self.guard = bool((transition == 0).any() or (prior == 0).any())
        if log_space:
            with np.errstate(divide="ignore"):
                self.log_a = torch.from_numpy(np.log(transition)).to(dev, dtype)  # C x C
                neg_log_p = np.where(p > 0, -np.log(p), -np.inf)  # r = 0 where P(l_t) = 0
            self.log_r = torch.from_numpy(neg_log_p[:, :, None]).to(dev, dtype)  # T x C x 1
        self._workspaces: dict[int, _Workspace] = {}  # one per thread

    def block(self, q_src: Any, target: np.ndarray, where: Callable[[int], str]) -> None:
        """Belief of one block: q_src (T, C, m) tensor view of the scores -> target."""
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

