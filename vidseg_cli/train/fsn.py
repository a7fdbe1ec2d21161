"""`train fsn`: the temporal CNN (FSN §3.3) on pre-extracted features. Clips of
`clip_snippets` consecutive snippets (§3.5: N = 7, T = 35 frames) slid over each video,
kept when they hold at least `min_action_frames` action frames (§3.5: 5), drawn
class-balanced by their dominant action; frame-wise cross-entropy (Eq. 4) after linear
upsampling to the clip's frames. SGD, lr 1e-4, momentum 0.9, weight decay 5e-4, batch 12
(§3.5) by default.

Under torchrun every rank draws the same class-balanced batch from (seed, epoch) and
trains on its share of it (train/distributed.py); validation videos are split over the
ranks and their scores gathered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS
from vidseg_cli.runtime import seed_everything
from vidseg_cli.train import distributed
from vidseg_cli.train.fsn_common import (
    Common,
    epoch_rng,
    frame_metrics,
    make_trainer,
    soft_cross_entropy,
)


# -- FSN on features --------------------------------------------------------------------------
@dataclass
class FSNSettings(Common):
    clip_snippets: int = 7  # N snippets per training clip (§3.5: 7, T = 35 frames)
    min_action_frames: int = 5  # keep clips with at least this many action frames (§3.5)
    window_step: int = 1  # stride of the clip windows, in snippets
    hidden: int = 256  # temporal conv channels
    dropout: float = 0.0


def feature_stats(videos: list[fd.FeatureVideo]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of the training features. The temporal CNN is trained on
    standardized features (a pooled CNN feature varies little around a large mean, which
    plain SGD crawls through); the statistics travel in the checkpoint's `preprocess`, and
    localize applies the same. A near-constant dimension's std is floored at 1% of the
    mean std, so it cannot blow up on other data."""
    allf = np.concatenate([v.features for v in videos]).astype(np.float64)  # sum N x D
    mu, sd = allf.mean(axis=0), allf.std(axis=0)
    sd = np.maximum(sd, 0.01 * sd.mean() + 1e-12)
    return mu.astype(np.float32), sd.astype(np.float32)


def standardize(videos: list[fd.FeatureVideo], mu: np.ndarray, sd: np.ndarray) -> None:
    for v in videos:
        v.features = ((v.features - mu) / sd).astype(np.float32)


def fsn_preprocess(videos, mu, sd, **more) -> dict:
    """What localize needs to prepare features exactly as training did (checkpoint `preprocess`)."""
    sig = fd.feature_signature(videos[0].attrs, videos[0].features.shape[1])
    sig["flow_method"] = str(videos[0].attrs.get("flow_method", "none"))
    return {"features": sig, "feature_mean": [float(x) for x in mu],
            "feature_std": [float(x) for x in sd], **more}


def fsn_extra(s, videos: list[fd.FeatureVideo], gt, val_gt, recipe: str) -> dict:
    sig = fd.feature_signature(videos[0].attrs, videos[0].features.shape[1])
    return {"recipe": recipe, **asdict(s), "features": {**sig, "flow_method": str(
        videos[0].attrs.get("flow_method", "none"))}, "gt": gt.path, "subset": gt.subset,
        "val_subset": val_gt.subset if val_gt else None, "train_videos": len(videos)}


def train_fsn(features: dict[str, str], gt, val_gt, s: FSNSettings, run_dir: str,
              resume: bool = False) -> dict[str, Any]:
    """FSN's temporal CNN on features (module docstring). Returns a summary."""
    from vidseg_cli.infer.fsn import slide_fsn

    seed_everything(s.seed)
    distributed.check_batch_size(s.batch_size)
    ids, notes = fd.select_videos(features, gt, "features")
    videos = fd.load_feature_videos(features, ids)
    classes = ["background", *gt.classes]
    windows = []
    for i, v in enumerate(videos):
        v.targets = fd.frame_targets(v.num_frames, v.fps, gt, v.video_id)
        snip = int(v.attrs.get("snippet", 1))
        windows += fd.clip_windows(v.centers, snip, v.targets, s.clip_snippets, s.min_action_frames,
                                   i, s.window_step)
    if not windows:
        raise InputError(gt.path, f"no training clip of {s.clip_snippets} snippets holds "
                                  f"{s.min_action_frames} action frames")
    val = val_features(features, val_gt, videos)
    D = videos[0].features.shape[1]
    model = MODELS.build("fsn", in_features=D, num_classes=len(classes), hidden=s.hidden,
                         dropout=s.dropout)
    mu, sd = feature_stats(videos)
    model.preprocess = fsn_preprocess(videos, mu, sd, clip_snippets=s.clip_snippets)  # saved with it
    standardize(videos + val, mu, sd)
    labels = [w.label for w in windows]

    def batches(epoch: int):
        rng = epoch_rng(s.seed, epoch)
        for _ in range(s.steps_per_epoch):
            picked = distributed.shard(fd.balanced_choice(rng, labels, s.batch_size))
            yield _clip_batch([windows[k] for k in picked], videos, s.clip_snippets)

    def loss_step(m, batch):
        x, y, centers, mask = batch  # B x N x D, B x (K+1) x T, B x N, B x T
        return _clip_loss(m, x, y, centers, mask)

    def validate(m) -> dict[str, float]:
        probs = distributed.map_sharded(
            lambda v: slide_fsn(m, v.features, v.centers, v.num_frames, s.clip_snippets), val)
        return frame_metrics(probs, val, val_gt)

    tr = make_trainer(model, classes, s, run_dir, fsn_extra(s, videos, gt, val_gt, "fsn"),
                      "frame_mAP" if val else None, resume, sharded=True)
    hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes,
            "clips": len(windows)}


def val_features(features, val_gt, train_videos) -> list[fd.FeatureVideo]:
    if val_gt is None:
        return []
    ids, _ = fd.select_videos(features, val_gt, "features")
    val = fd.load_feature_videos(features, ids)
    ref = fd.feature_signature(train_videos[0].attrs, train_videos[0].features.shape[1])
    for v in val:
        if fd.feature_signature(v.attrs, v.features.shape[1]) != ref:
            raise InputError(v.path, f"validation features differ from the training ones ({ref})")
    return val


def _clip_batch(windows: list[fd.Window], videos, n: int):
    """Pad clips to the batch's longest: features B x N x D, targets B x (K+1) x T, clip-relative
    centres B x N (padding repeats the last centre + 1 frame steps), frame mask B x T."""
    B = len(windows)
    D = videos[0].features.shape[1]
    C = videos[0].targets.shape[1]
    T = max(w.frames[1] - w.frames[0] for w in windows)
    x = np.zeros((B, n, D), np.float32)
    y = np.zeros((B, C, T), np.float32)
    centers = np.zeros((B, n), np.float64)
    mask = np.zeros((B, T), np.float32)
    for b, w in enumerate(windows):
        v = videos[w.video]
        e = min(w.first + n, len(v.centers))
        k = e - w.first
        x[b, :k] = v.features[w.first:e]
        c = v.centers[w.first:e] - w.frames[0]
        centers[b, :k] = c
        centers[b, k:] = c[-1] + 1 + np.arange(n - k)  # beyond the clip's frames: no effect
        t = w.frames[1] - w.frames[0]
        y[b, :, :t] = v.targets[w.frames[0]:w.frames[1]].T
        mask[b, :t] = 1
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(centers), torch.from_numpy(mask)


def _clip_loss(model, x, y, centers, mask) -> torch.Tensor:
    """Eq. 4 over the real frames of each clip (padded frames masked out). The clips' snippet
    scores come from one batched pass (a short video's padded clip goes alone, so padding
    never reaches its real snippets); upsampling to frames is per clip (own centres)."""
    from vidseg_cli.models.fsn import upsample_to_frames

    n = x.shape[1]
    k = (centers < mask.sum(1, keepdim=True)).sum(1)  # real snippets per clip
    full = (k == n).nonzero().flatten().tolist()
    scores: dict[int, torch.Tensor] = {}
    if full:
        s = model.snippet_logits(x[full])  # F x C x n
        scores.update({b: s[i:i + 1] for i, b in enumerate(full)})
    for b in (k < n).nonzero().flatten().tolist():
        scores[b] = model.snippet_logits(x[b:b + 1, :int(k[b])])  # 1 x C x k
    losses = []
    for b in range(x.shape[0]):
        t, kb = int(mask[b].sum()), int(k[b])
        logits = upsample_to_frames(scores[b], centers[b, :kb], t)  # 1 x C x t (§3.3)
        losses.append(soft_cross_entropy(logits, y[b:b + 1, :, :t]))
    return distributed.batch_mean(torch.stack(losses))  # over the global batch
