"""What every FSN training recipe shares (train/backbone.py, train/fsn.py,
train/fsn_e2e.py, train/wfsn.py): the settings, the SGD optimizer and Trainer, the
per-epoch generator, the soft cross-entropy (Eq. 4) and the validation metrics. Every
recipe runs under torchrun (train/distributed.py): each takes its share of every batch
(distributed.shard) and makes its Trainer with `sharded=True`.

Validation (per epoch) slides the network over whole validation videos as `localize`
does and reports frame-level mAP (FSN Table 1) and, for fsn/wfsn, segment mAP at tIoU
0.5 (activitynet protocol) through the metrics package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidseg_cli.errors import InputError
from vidseg_cli.train import distributed
from vidseg_cli.train.engine import Trainer, TrainSettings


@dataclass
class Common:
    """Settings every FSN recipe shares (recorded in config.json and last.ckpt)."""

    epochs: int = 10
    steps_per_epoch: int = 200  # batches drawn per epoch (sampling is with replacement)
    batch_size: int = 12  # §3.5
    lr: float = 1e-4  # §3.5
    momentum: float = 0.9  # §3.5
    weight_decay: float = 5e-4  # §3.5
    schedule: str = "constant"  # "constant" (§3.5 gives none) or "cosine" (to 0 over the run)
    grad_clip: float | None = None
    seed: int = 0
    max_steps: int | None = None
    device: str = "auto"
    amp: bool = False
    quiet: bool = False


def _optimizer(model: nn.Module, c: Common):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    total = c.max_steps if c.max_steps is not None else c.epochs * c.steps_per_epoch
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total))
             if c.schedule == "cosine" else None)
    return opt, sched


def make_trainer(model, classes, c: Common, run_dir, extra: dict, monitor: str, resume: bool,
                 sharded: bool = False) -> Trainer:
    """The Trainer of a recipe; `sharded`: its batches are this rank's shares
    (distributed.shard), so it may run under torchrun."""
    opt, sched = _optimizer(model, c)
    s = TrainSettings(epochs=c.epochs, max_steps=c.max_steps, seed=c.seed, amp=c.amp,
                      grad_clip=c.grad_clip, monitor=monitor, monitor_mode="max", quiet=c.quiet,
                      extra=extra)
    tr = Trainer(model, classes, opt, run_dir, s, distributed.device(c.device), scheduler=sched,
                 sharded=sharded)
    last = Path(run_dir) / "last.ckpt"
    if resume:
        if not last.exists():
            raise InputError(last, "nothing to resume: no last.ckpt in the run folder")
        tr.resume(last)
    elif last.exists():
        raise InputError(run_dir, "holds a run already (last.ckpt); use --resume to continue it "
                                  "or another folder")
    return tr


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Cross-entropy against a target distribution along `dim`, averaged over the rest
    (Eq. 4 with one-hot targets; averaged over frames as well as the batch, which only
    rescales the paper's sum over frames)."""
    return -(target * F.log_softmax(logits.float(), dim=dim)).sum(dim=dim).mean()


def item_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`soft_cross_entropy` of each item of a batch (B x C logits and target
    distributions): the B per-item losses, for a mean over a global batch split over
    ranks (distributed.batch_mean); their mean is soft_cross_entropy(logits, target)."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)


# -- validation, shared with localize ---------------------------------------------------------
def frame_metrics(probs: list[np.ndarray], videos: list, gt, score: str = "mean") -> dict[str, float]:
    """Frame mAP (FSN Table 1) and segment mAP@0.5 (activitynet) of per-video (T, K+1) probs,
    runs scored as localize scores them (`score`: infer/fsn.py DEFAULT_SEGMENT_SCORE)."""
    from vidseg_cli.datasets.predictions import Predictions
    from vidseg_cli.metrics.frame_ap import frame_average_precision, rasterize
    from vidseg_cli.metrics.temporal_report import evaluate_detections
    from vidseg_cli.stages.grouping import group_frames

    K = len(gt.classes)
    sc, pos, dv, ds, dl, dsc = [], [], [], [], [], []
    for p, v in zip(probs, videos):
        m = gt.video == v.video_id
        pos.append(rasterize(len(p), v.fps, gt.segments[m], gt.label[m], K))
        sc.append(p[:, 1:])
        seg, lab, s = group_frames(p, background=0, score=score)
        dv += [v.video_id] * len(s)
        ds.append(seg / v.fps)
        dl += [gt.classes[i - 1] for i in lab]
        dsc.append(s)
    ap = frame_average_precision(np.concatenate(sc), np.concatenate(pos))
    pred = Predictions(kind="detections", sources=["validation"], video=np.array(dv, dtype=str),
                       segments=np.concatenate(ds).reshape(-1, 2), score=np.concatenate(dsc),
                       label=np.array(dl, dtype=str), label_index=np.full(len(dl), -1, np.int64))
    det = evaluate_detections(pred, gt, "activitynet", thresholds=[0.5])
    return {"frame_mAP": float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan"),
            "mAP@0.5": float(det["mAP"]["0.5"] or 0.0)}
