"""Fitting the HMM of 3DFCN §3.5: counting first labels and transitions in ground truth,
checking a (prior, transition) pair, and comparing class lists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


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


def same_classes(a: Sequence[str] | None, b: Sequence[str] | None) -> str | None:
    """None if two class lists are equal, else a short description of the difference."""
    a, b = list(a or []), list(b or [])
    if a == b:
        return None
    if len(a) != len(b):
        return f"{len(a)} classes vs {len(b)}"
    i = next(k for k in range(len(a)) if a[k] != b[k])
    return f"class {i} is '{a[i]}' vs '{b[i]}'"
