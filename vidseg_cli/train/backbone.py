"""`train backbone`: a 2D CNN frame classifier, TSN-style (FSN §3.2 uses TSN's networks):
single frames (rgb) or 5 stacked flow fields (flow) around a frame, labelled by the
temporal ground truth, drawn class-balanced, randomly flipped; K+1 classes.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.models import MODELS, load_public_weights
from vidseg_cli.models.preprocess import IMAGENET_RGB_MEAN, IMAGENET_RGB_STD
from vidseg_cli.runtime import seed_everything
from vidseg_cli.train.fsn_common import (
    Common,
    epoch_rng,
    make_trainer,
    soft_cross_entropy,
)


# -- backbone -------------------------------------------------------------------------------
@dataclass
class BackboneSettings(Common):
    arch: str = "resnet18"  # resnet18 | resnet50 (torchvision layouts)
    width: float = 0.25  # channel multiplier (1.0 = the real network, which --init can fill)
    stream: str = "rgb"
    flow: str = "farneback"  # flow method for the flow stream (tvl1 is ~100x slower on a CPU)
    init: str | None = None  # public ImageNet weights (width 1.0)
    batch_size: int = 32
    lr: float = 0.01
    val_stride: int = 5  # validation frames: every val_stride-th frame (snippet centres)


def train_backbone(frames: dict[str, str], gt, val_gt, s: BackboneSettings, run_dir: str,
                   resume: bool = False) -> dict[str, Any]:
    """TSN-style frame classifier (module docstring). Returns a summary."""
    seed_everything(s.seed)
    ids, notes = fd.select_videos(frames, gt, "frames")
    classes = ["background", *gt.classes]
    with contextlib.ExitStack() as stack:
        vids = [open_frames(stack, frames[v], s.flow) for v in ids]
        items_v, items_t, items_c = [], [], []
        for i, v in enumerate(vids):
            y = fd.frame_targets(v.num_frames, v.fps, gt, v.video_id)
            t = np.arange(v.num_frames) if s.stream == "rgb" else np.arange(max(v.num_frames - 1, 0))
            items_v += [i] * len(t)
            items_t.append(t)
            items_c.append(y[t].argmax(axis=1))
        items_t, items_c = np.concatenate(items_t), np.concatenate(items_c)
        items_v = np.asarray(items_v)
        targets = [fd.frame_targets(v.num_frames, v.fps, gt, v.video_id) for v in vids]
        channels = 3 if s.stream == "rgb" else 2 * fd.FLOW_LENGTH
        model = MODELS.build(s.arch, num_classes=len(classes), width=s.width, in_channels=channels)
        if s.init:
            load_public_weights(s.init, model)
        model = model.to(memory_format=torch.channels_last)  # several times faster narrow convs on CPU
        model.preprocess = backbone_preprocess(s.stream, s.flow)
        val = open_val_frames(stack, frames, val_gt, s.flow)

        def batches(epoch: int):
            rng = epoch_rng(s.seed, epoch)
            for _ in range(s.steps_per_epoch):
                pick = fd.balanced_choice(rng, items_c, s.batch_size)
                x, y = [], []
                for k in pick:
                    v, t = items_v[k], int(items_t[k])
                    x.append(vids[v].inputs([t], s.stream)[0])
                    y.append(targets[v][t])
                x = np.stack(x)
                flip = rng.random(len(x)) < 0.5
                x[flip] = fd.flip_inputs(x[flip], s.stream)
                yield (torch.from_numpy(x).contiguous(memory_format=torch.channels_last),
                       torch.from_numpy(np.stack(y)))

        def loss_step(m, batch):
            x, y = batch
            return soft_cross_entropy(m(x), y)

        def validate(m) -> dict[str, float]:
            from vidseg_cli.metrics.frame_ap import frame_average_precision

            dev = next(m.parameters()).device
            sc, pos = [], []
            for v in val:
                t = np.arange((s.val_stride - 1) // 2, v.num_frames - (s.stream == "flow"), s.val_stride)
                y = fd.frame_targets(v.num_frames, v.fps, val_gt, v.video_id)[t]
                for lo in range(0, len(t), 64):
                    x = torch.from_numpy(v.inputs(t[lo:lo + 64], s.stream)).to(
                        dev, memory_format=torch.channels_last)
                    sc.append(m(x).softmax(1).float().cpu().numpy()[:, 1:])
                pos.append(y[:, 1:] > 0)
            ap = frame_average_precision(np.concatenate(sc), np.concatenate(pos))
            return {"frame_mAP": float(np.nanmean(ap))}

        extra = {"recipe": "backbone", **asdict(s), "train_videos": len(ids), "gt": gt.path,
                 "subset": gt.subset, "val_subset": val_gt.subset if val_gt else None}
        tr = make_trainer(model, classes, s, run_dir, extra, "frame_mAP" if val else None, resume)
        hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes}


def backbone_preprocess(stream: str, flow: str) -> dict:
    """How a backbone's inputs are made (checkpoint `preprocess`; extract-features follows it)."""
    from vidseg_cli.video.flow import FLOW_BOUND

    if stream == "rgb":
        return {"stream": "rgb", "mean": [float(x) for x in IMAGENET_RGB_MEAN], "std": [float(x) for x in IMAGENET_RGB_STD]}
    return {"stream": "flow", "flow_method": flow, "flow_length": fd.FLOW_LENGTH, "flow_bound": FLOW_BOUND}


def open_frames(stack: contextlib.ExitStack, path: str, flow: str) -> fd.VideoFrames:
    v = fd.VideoFrames(path, flow_method=flow)
    stack.callback(v.close)
    return v


def open_val_frames(stack, frames: dict[str, str], val_gt, flow: str) -> list[fd.VideoFrames]:
    if val_gt is None:
        return []
    ids, _ = fd.select_videos(frames, val_gt, "frames")
    return [open_frames(stack, frames[v], flow) for v in ids]
