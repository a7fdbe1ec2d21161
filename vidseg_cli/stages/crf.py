"""Fully connected CRF on each frame (3DFCN §3.6, Eq. (5)-(6); settings of §4.2).

The energy of a frame's labelling (Eq. (5)) is a unary term per pixel plus a Potts
pairwise term over every pair of pixels (Eq. (6)):

    psi_u(l_i) = -log P(l_i | .)        from softmax scores, or from an HMM belief (§3.5)
    psi_p(l_i, l_j) = [l_i != l_j] (w1 exp(-|p_i-p_j|^2 / 2 theta_alpha^2
                                          - |I_i-I_j|^2 / 2 theta_beta^2)
                                   + w2 exp(-|p_i-p_j|^2 / 2 theta_gamma^2))

minimised approximately by mean-field inference with permutohedral-lattice filtering
(Krähenbühl and Koltun, the paper's [16]), here through pydensecrf's DenseCRF2D. The
defaults are §4.2's: w1 = 10, theta_alpha = 100, theta_beta = 10, w2 = 3,
theta_gamma = 3 and 10 mean-field iterations.

Frames are independent, so `refine_frames` runs them in parallel worker processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from vidseg_cli.core import workers

__all__ = [
    "CRFParams",
    "refine_frame",
    "refine_frames",
    "upsample_to",
]


@dataclass(frozen=True)
class CRFParams:
    """Eq. (6)'s weights and widths (pixels; RGB units for theta_beta), §4.2 defaults."""

    w1: float = 10.0  # appearance (bilateral) kernel weight
    theta_alpha: float = 100.0  # its spatial width
    theta_beta: float = 10.0  # its colour width
    w2: float = 3.0  # smoothness (Gaussian) kernel weight
    theta_gamma: float = 3.0  # its spatial width
    iterations: int = 10  # mean-field iterations
    min_prob: float = 1e-8  # probabilities below this are read as this in -log P

    def __post_init__(self) -> None:
        for name in ("theta_alpha", "theta_beta", "theta_gamma", "min_prob"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("w1", "w2"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def upsample_to(probs: np.ndarray, stride: int, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) posteriors at `stride` -> (C, H, W) at frame resolution: bilinear, the
    cell of index i centred on pixel i*stride + (stride-1)/2, cropped to `size`.

    Bilinear weights are convex, so the result still sums to 1 over classes.
    """
    if stride == 1:
        if probs.shape[1:] != tuple(size):
            raise ValueError(f"scores are {probs.shape[1:]}, frames {tuple(size)}")
        return np.asarray(probs, np.float32)
    from vidseg_cli.stages.upsample import upsample_probs

    return upsample_probs(np.asarray(probs, np.float32), stride, size)


def refine_frame(image: np.ndarray, probs: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Mean-field marginals (C, H, W) float32 of Eq. (5) for one frame.

    image: (H, W, 3) uint8 RGB; probs: (C, H, W) class posteriors at the same size.
    """
    import pydensecrf.densecrf as dcrf

    c, h, w = probs.shape
    if image.shape != (h, w, 3):
        raise ValueError(f"image is {image.shape}, expected ({h}, {w}, 3) to match the scores")
    unary = -np.log(np.maximum(probs.reshape(c, h * w), params.min_prob, dtype=np.float32))  # C x HW
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    if params.w2 > 0:
        crf.addPairwiseGaussian(sxy=params.theta_gamma, compat=params.w2)
    if params.w1 > 0:
        crf.addPairwiseBilateral(
            sxy=params.theta_alpha,
            srgb=params.theta_beta,
            rgbim=np.ascontiguousarray(image, dtype=np.uint8),
            compat=params.w1,
        )
    q = crf.inference(int(params.iterations))
    return np.asarray(q, dtype=np.float32).reshape(c, h, w)


def _refine_task(image: np.ndarray, probs: np.ndarray, stride: int, params: CRFParams,
                 keep_probs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    size = image.shape[:2]
    full = upsample_to(probs, stride, size)  # C x H x W
    marg = refine_frame(image, full, params)
    labels = np.argmax(marg, axis=0).astype(np.uint8)  # H x W
    return labels, (marg if keep_probs else None)


def refine_frames(
    frames: Iterable[np.ndarray],
    probs: Iterable[np.ndarray],
    *,
    stride: int = 1,
    params: CRFParams = CRFParams(),
    jobs: int = 1,
    keep_probs: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Refine a video frame by frame, in order: yields (labels (H, W) uint8, marginals
    (C, H, W) float32 or None) per frame.

    frames: (H, W, 3) uint8 RGB images; probs: (C, h, w) posteriors at `stride` (h*stride
    covers H). Both are consumed lazily, a few frames ahead of the workers, so memory
    stays flat in video length. jobs > 1: worker processes over frames (core/workers.py).
    """
    pairs = zip(frames, probs)
    if jobs <= 1:
        for img, pr in pairs:
            res = _refine_task(img, pr, stride, params, keep_probs)
            if progress is not None:
                progress(1)
            yield res
        return
    tasks = ((img, pr, stride, params, keep_probs) for img, pr in pairs)
    with contextlib.closing(workers.ordered(_refine_task, tasks, jobs, pre_dispatch="2*n_jobs",
                                            batch_size=1)) as results:
        for res in results:
            if progress is not None:
                progress(1)
            yield res

