"""`train wfsn`: video-level labels only (FSN §3.4/§3.5): each video cut into M = 100
equal segments, one random snippet feature from each, the temporal CNN's K scores pooled
over them (max by default, Eq. 2) and a softmax cross-entropy on the pooled score (Eq. 3)
against the video's classes (uniform over them when there are several).

Under torchrun every rank draws the same class-balanced batch of videos and their snippet
samples from (seed, epoch) and trains on its share of it (train/distributed.py);
validation videos are split over the ranks and their scores gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS
from vidseg_cli.runtime import seed_everything
from vidseg_cli.train import distributed
from vidseg_cli.train.fsn import feature_stats, fsn_extra, fsn_preprocess, standardize, val_features
from vidseg_cli.train.fsn_common import (
    Common,
    epoch_rng,
    frame_metrics,
    item_cross_entropy,
    make_trainer,
)


# -- WFSN -----------------------------------------------------------------------------------
@dataclass
class WFSNSettings(Common):
    segments: int = 100  # M equal segments per video, one random snippet each (§3.5)
    pooling: str = "max"  # GMP (§3.4, the paper's choice) or avg (GAP)
    hidden: int = 256
    dropout: float = 0.0
    batch_size: int = 12


def train_wfsn(features: dict[str, str], gt, val_gt, s: WFSNSettings, run_dir: str,
               resume: bool = False) -> dict[str, Any]:
    """WFSN from video-level labels (module docstring). Returns a summary."""
    from vidseg_cli.infer.fsn import DEFAULT_SEGMENT_SCORE, wfsn_frame_probs

    seed_everything(s.seed)
    distributed.check_batch_size(s.batch_size)
    ids, notes = fd.select_videos(features, gt, "features")
    videos = [v for v in fd.load_feature_videos(features, ids) if len(v.features)]
    for v in videos:
        v.labels = fd.video_labels(gt, v.video_id)
    videos = [v for v in videos if v.labels.sum() > 0]  # §3.4: a video label needs an action
    if not videos:
        raise InputError(gt.path, "no training video has both features and an action label")
    classes = ["background", *gt.classes]
    val = val_features(features, val_gt, videos)
    D = videos[0].features.shape[1]
    model = MODELS.build("wfsn", in_features=D, num_classes=len(gt.classes), pooling=s.pooling,
                         hidden=s.hidden, dropout=s.dropout)
    mu, sd = feature_stats(videos)
    model.preprocess = fsn_preprocess(videos, mu, sd)
    standardize(videos + val, mu, sd)
    groups = [int(np.flatnonzero(v.labels)[0]) for v in videos]  # balance by a class of the video

    def batches(epoch: int):
        rng = epoch_rng(s.seed, epoch)
        for _ in range(s.steps_per_epoch):
            pick = fd.balanced_choice(rng, groups, s.batch_size)
            # every item's snippets drawn, as one process draws them, then this rank's share
            samples = [_segment_sample(rng, videos[k].features, s.segments) for k in pick]
            mine = distributed.shard(np.arange(len(pick)))
            x = np.stack([samples[i] for i in mine])
            y = np.stack([videos[pick[i]].labels / videos[pick[i]].labels.sum() for i in mine])
            yield torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))

    def loss_step(m, batch):
        x, y = batch  # B x M x D, B x K
        return distributed.batch_mean(item_cross_entropy(m(x), y))  # Eq. 3 + cross-entropy

    def validate(m) -> dict[str, float]:
        probs = distributed.map_sharded(
            lambda v: wfsn_frame_probs(m, v.features, v.centers, v.num_frames), val)
        return frame_metrics(probs, val, val_gt, DEFAULT_SEGMENT_SCORE["wfsn"])

    tr = make_trainer(model, classes, s, run_dir, fsn_extra(s, videos, gt, val_gt, "wfsn"),
                      "mAP@0.5" if val else None, resume, sharded=True)
    hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes}


def _segment_sample(rng: np.random.Generator, feats: np.ndarray, m: int) -> np.ndarray:
    """§3.5: M equal segments of the video, one random snippet from each: M x D. With fewer
    than M snippets a segment is shorter than one and snippets repeat."""
    n = len(feats)
    lo = np.floor(np.arange(m) * n / m).astype(np.int64)
    hi = np.maximum(np.floor(np.arange(1, m + 1) * n / m).astype(np.int64), lo + 1)
    return feats[np.minimum(rng.integers(lo, hi), n - 1)]
