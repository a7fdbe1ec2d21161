"""Segment-tube on one video in memory (Segment-tube §2): frames in, frame labels,
detections and per-pixel masks out.

    superpixels + B_o (saliency, §2.3)
    round: saliency-aware clips of both lengths -> C3D fc7 -> the two LSTM networks
           -> Eq. 1-4 (k', α_t, l_t)                                       §2.1
           -> one cut on the frames labelled k' (Eq. 5-7) -> B              §2.2
    until the alternation stops (stages/segment_tube.py)

Saliency-aware clips [U] (the paper says only "saliency-aware"): pixels outside the current
mask B, dilated by 1 pixel at the network's frame size, are blended toward the trunk's
pixel mean μ: x' = m x + (1 - m)(κ x + (1 - κ) μ), κ = 0.5 ("soft"); "hard" is κ = 0,
"none" leaves clips as they are. A 32-frame window gives 16 frames, every second one
(stages/windows.py's sampling), so both lengths share the trunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vidseg_cli.datasets.scnn_data import clip_batch
from vidseg_cli.datasets.segment_tube_data import mask_frames
from vidseg_cli.models.preprocess import resize_frames
from vidseg_cli.runtime import autocast
from vidseg_cli.stages.saliency import initial_mask
from vidseg_cli.stages.segment_tube import ROUNDS, AlternationResult, alternate, changes
from vidseg_cli.stages.segment_tube_spatial import SpatialParams, segment_round
from vidseg_cli.stages.segment_tube_temporal import (
    CLIP_LENGTHS,
    CLIP_OVERLAP,
    GAMMA,
    LADDER,
    LADDER_NMS,
    TemporalResult,
    clip_windows,
    localize_clips,
)
from vidseg_cli.stages.superpixels import (
    SuperpixelParams,
    compute_superpixels,
    node_masks,
    working_frames,
)
from vidseg_cli.stages.windows import sample_clip_indices

CLIP_MASKS = ("soft", "hard", "none")
MASK_KEEP = 0.5  # κ of the soft clip mask [U]


@dataclass(frozen=True)
class Settings:
    """Every setting of a run; `attrs()` is what the output files record."""

    gamma: float = GAMMA  # Eq. 4 threshold
    ladder: tuple[float, ...] = LADDER  # the detection ladder's thresholds; () = the paper's runs
    ladder_nms: float = LADDER_NMS  # tIoU of the ladder's NMS
    rounds: int = ROUNDS  # cap on the alternation's rounds
    clip_lengths: tuple[int, ...] = CLIP_LENGTHS  # §2.1
    clip_overlap: float = CLIP_OVERLAP  # §2.1
    video_class: str = "mean"  # how k' is chosen: mean (the paper) or sum
    clip_mask: str = "soft"  # soft | hard | none
    mask_keep: float = MASK_KEEP  # κ of the soft mask
    saliency: str = "static"  # B_o: static | motion
    superpixels: SuperpixelParams = field(default_factory=SuperpixelParams)
    spatial: SpatialParams = field(default_factory=SpatialParams)
    batch_size: int = 16  # clips per trunk pass

    def __post_init__(self) -> None:
        if self.clip_mask not in CLIP_MASKS:
            raise ValueError(f"clip mask must be one of {', '.join(CLIP_MASKS)}, got {self.clip_mask!r}")
        if not all(0.0 <= t <= 1.0 for t in self.ladder) or not 0.0 <= self.ladder_nms <= 1.0:
            raise ValueError(f"detection ladder thresholds and NMS must be in [0, 1], got {self.ladder}, "
                             f"{self.ladder_nms}")
        if not 0.0 <= self.mask_keep <= 1.0:
            raise ValueError(f"mask_keep must be in [0, 1], got {self.mask_keep}")
        if self.rounds < 1 or self.batch_size < 1:
            raise ValueError("rounds and batch_size must be >= 1")
        if not self.clip_lengths or min(self.clip_lengths) < 1:
            raise ValueError(f"clip lengths must be positive, got {self.clip_lengths}")

    def attrs(self) -> dict[str, Any]:
        sp, st = self.superpixels, self.spatial
        return {
            "gamma": self.gamma, "detection_ladder": list(self.ladder), "detection_nms": self.ladder_nms,
            "max_rounds": self.rounds, "clip_lengths": list(self.clip_lengths),
            "clip_overlap": self.clip_overlap, "video_class_mode": self.video_class,
            "clip_mask": self.clip_mask,
            "mask_keep": self.mask_keep if self.clip_mask == "soft" else 0.0,
            "saliency": self.saliency, "superpixels": sp.count, "work_size": sp.work_size,
            "beta": st.beta, "gmm_components": [st.colour_components, st.location_components],
            "pairwise": st.pairwise, "pairwise_weight": st.pairwise_weight,
        }


@dataclass
class VideoResult:
    temporal: TemporalResult  # the last round's Eq. 1-4
    labels: np.ndarray  # T x H x W uint8: k' on the foreground of frames labelled k', else 0
    alternation: AlternationResult | None  # None for a video with no clip


class SegmentTubeInference:
    """A Segment-tube network with its C3D trunk (models/segment_tube.py) on a device."""

    def __init__(self, model, settings: Settings, device, amp: bool = False):
        self.model, self.settings, self.device, self.amp = model.to(device).eval(), settings, device, amp
        self.spec = model.trunk.spec
        self.mean = float(model.trunk.pixel_mean)

    def min_size(self) -> tuple[int, int]:
        """(h, w): frames smaller than the trunk's crop are refused (it would see upscaled pixels)."""
        return tuple(self.spec.crop_size)

    def __call__(self, frames: np.ndarray) -> VideoResult:
        """T x H x W x 3 uint8 RGB frames -> labels, detections (module docstring)."""
        s = self.settings
        t_len, height, width = frames.shape[:3]
        windows = clip_windows(t_len, s.clip_lengths, s.clip_overlap)
        if len(windows) == 0:  # shorter than every clip: nothing to localize
            empty = localize_clips(windows, np.zeros((0, 2)), np.zeros((0, self.model.num_classes)),
                                   t_len, s.gamma, s.video_class)
            return VideoResult(empty, np.zeros((t_len, height, width), np.uint8), None)
        sp = compute_superpixels(frames, s.superpixels)
        start = initial_mask(sp, working_frames(frames, s.superpixels.work_size), s.saliency)
        resized = resize_frames(frames, self.spec.frame_hw)  # T x fh x fw x 3, once per video
        cache: dict[bytes, TemporalResult] = {}

        def temporal(mask: np.ndarray) -> TemporalResult:
            key = b"" if s.clip_mask == "none" else np.packbits(mask).tobytes()
            if key not in cache:
                p_pro, p_cla = self.clip_scores(resized, windows, self.pixel_mask(sp, mask))
                cache[key] = localize_clips(windows, p_pro, p_cla, t_len, s.gamma, s.video_class,
                                            s.ladder, s.ladder_nms)
            return cache[key]

        result = alternate(start, temporal, lambda mask, kept: segment_round(sp, mask, kept, s.spatial),
                           s.rounds)
        k = result.temporal.video_class
        fg = node_masks(sp, result.mask, (height, width))  # T x H x W bool
        keep = (result.temporal.labels == k)[:, None, None] if k >= 1 else np.zeros((t_len, 1, 1), bool)
        labels = np.where(fg & keep, k, 0).astype(np.uint8)
        return VideoResult(result.temporal, labels, result)

    def pixel_mask(self, sp, mask: np.ndarray) -> np.ndarray | None:
        """B painted at the network's frame size: T x fh x fw uint8 in {0, 1}."""
        if self.settings.clip_mask == "none":
            return None
        return node_masks(sp, mask, self.spec.frame_hw).astype(np.uint8)

    def clip_scores(self, resized: np.ndarray, windows: np.ndarray, mask: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """p^pro (N, 2) and p^cla (N, K+1) of every window: each length's windows, in start
        order, are one sequence through the LSTMs. Clips are saliency-aware as in training
        (datasets/segment_tube_data.mask_frames, the one soft mask)."""
        if mask is not None:
            keep = self.settings.mask_keep if self.settings.clip_mask == "soft" else 0.0
            resized = mask_frames(resized, mask, self.mean, keep)
        n = len(windows)
        p_pro, p_cla = np.zeros((n, 2)), np.zeros((n, self.model.num_classes))
        lengths = windows[:, 1] - windows[:, 0]
        for length in np.unique(lengths):
            sel = np.flatnonzero(lengths == length)
            sel = sel[np.argsort(windows[sel, 0], kind="stable")]
            feats = self.features(resized, windows[sel])  # L x D
            with torch.no_grad(), autocast(self.device, self.amp):
                pro, cla = self.model.probs(feats[None])
            p_pro[sel], p_cla[sel] = pro[0].float().cpu().numpy(), cla[0].float().cpu().numpy()
        return p_pro, p_cla

    def features(self, frames: np.ndarray, windows: np.ndarray) -> torch.Tensor:
        """fc7 of the clips of `windows` (frames already masked): L x D on the device."""
        s, spec = self.settings, self.spec
        out = []
        for i in range(0, len(windows), s.batch_size):
            idx = np.stack([sample_clip_indices(int(a), int(b), spec.clip_frames)
                            for a, b in windows[i:i + s.batch_size]])
            idx = np.clip(idx, 0, len(frames) - 1)  # B x 16
            clips = torch.from_numpy(clip_batch(frames, idx, spec)).to(self.device).float()
            with torch.no_grad(), autocast(self.device, self.amp):
                out.append(self.model.clip_features(clips).float())
        return torch.cat(out)


def frame_scores(result: TemporalResult, num_classes: int) -> np.ndarray:
    """(T, K+1) for frame AP: α_t for k', 1 - α_t for background (all background when k' = 0)."""
    probs = np.zeros((len(result.alpha), num_classes), np.float32)
    probs[:, 0] = 1.0 - result.alpha
    if result.video_class >= 1:
        probs[:, result.video_class] = result.alpha
    return probs


def round_attrs(result: VideoResult) -> dict[str, Any]:
    """What the alternation did, as file attributes."""
    alt = result.alternation
    records = alt.rounds if alt is not None else []
    return {"rounds": len(records), "converged": bool(alt.converged) if alt is not None else False,
            **changes(records)}

