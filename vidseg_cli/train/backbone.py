"""`train backbone`: a 2D CNN frame classifier, TSN-style (FSN §3.2 uses TSN's networks):
single frames (rgb) or 5 stacked flow fields (flow) around a frame, labelled by the
temporal ground truth, drawn class-balanced, randomly flipped; K+1 classes.

Under torchrun every rank draws the same class-balanced batch and flips from (seed, epoch)
and reads and trains on its share of it (train/distributed.py); validation videos are
split over the ranks and their scores gathered. The ResNets have BatchNorm: `sync_bn`
normalises each training batch with the global batch's statistics (train/sync_bn.py), as
one process does; without it each rank normalises its own share.
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
from vidseg_cli.train import distributed
from vidseg_cli.train.fsn_common import (
    Common,
    epoch_rng,
    item_cross_entropy,
    make_trainer,
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
    sync_bn: bool = False  # several ranks: BatchNorm statistics of the global batch


def train_backbone(frames: dict[str, str], gt, val_gt, s: BackboneSettings, run_dir: str,
                   resume: bool = False) -> dict[str, Any]:
    """TSN-style frame classifier (module docstring). Returns a summary."""
    from vidseg_cli.train import sync_bn

    seed_everything(s.seed)
    distributed.check_batch_size(s.batch_size)
    ids, notes = fd.select_videos(frames, gt, "frames")
    classes = ["background", *gt.classes]
    with contextlib.ExitStack() as stack:
        vids = [open_frames(stack, frames[v], s.flow) for v in ids]
        check_one_size(vids)
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
        if s.sync_bn and distributed.current().active:  # before the optimizer takes the parameters
            model = sync_bn.convert(model, distributed.device(s.device))  # BatchNorm's names kept
        model.preprocess = backbone_preprocess(s.stream, s.flow)
        val = open_val_frames(stack, frames, val_gt, s.flow)

        def batches(epoch: int):
            rng = epoch_rng(s.seed, epoch)
            for _ in range(s.steps_per_epoch):
                # the global batch and its flips, as one process draws them; this rank's share read
                pick = fd.balanced_choice(rng, items_c, s.batch_size)
                flip = rng.random(len(pick)) < 0.5
                mine = distributed.shard(np.arange(len(pick)))
                x, y = [], []
                for k in pick[mine]:
                    v, t = items_v[k], int(items_t[k])
                    x.append(vids[v].inputs([t], s.stream)[0])
                    y.append(targets[v][t])
                x = np.stack(x)
                x[flip[mine]] = fd.flip_inputs(x[flip[mine]], s.stream)
                yield (torch.from_numpy(x).contiguous(memory_format=torch.channels_last),
                       torch.from_numpy(np.stack(y)))

        def loss_step(m, batch):
            x, y = batch
            return distributed.batch_mean(item_cross_entropy(m(x), y))  # over the global batch

        def validate(m) -> dict[str, float]:
            from vidseg_cli.metrics.frame_ap import frame_average_precision

            scored = distributed.map_sharded(lambda v: _val_scores(m, v, val_gt, s), val)
            ap = frame_average_precision(np.concatenate([sc for sc, _ in scored]),
                                         np.concatenate([pos for _, pos in scored]))
            return {"frame_mAP": float(np.nanmean(ap))}

        extra = {"recipe": "backbone", **asdict(s), "train_videos": len(ids), "gt": gt.path,
                 "subset": gt.subset, "val_subset": val_gt.subset if val_gt else None}
        tr = make_trainer(model, classes, s, run_dir, extra, "frame_mAP" if val else None, resume,
                          sharded=True)
        hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes}


def _val_scores(m, v: fd.VideoFrames, val_gt, s: BackboneSettings) -> tuple[np.ndarray, np.ndarray]:
    """A validation video's action scores (n, K) at every val_stride-th frame and whether
    each frame shows each action (n, K)."""
    dev = next(m.parameters()).device
    t = np.arange((s.val_stride - 1) // 2, v.num_frames - (s.stream == "flow"), s.val_stride)
    y = fd.frame_targets(v.num_frames, v.fps, val_gt, v.video_id)[t]
    sc = [m(torch.from_numpy(v.inputs(t[lo:lo + 64], s.stream)).to(
        dev, memory_format=torch.channels_last)).softmax(1).float().cpu().numpy()[:, 1:]
        for lo in range(0, len(t), 64)]
    K = y.shape[1] - 1
    return (np.concatenate(sc) if sc else np.zeros((0, K), np.float32)), y[:, 1:] > 0


def backbone_preprocess(stream: str, flow: str) -> dict:
    """How a backbone's inputs are made (checkpoint `preprocess`; extract-features follows it)."""
    from vidseg_cli.video.flow import FLOW_BOUND

    if stream == "rgb":
        return {"stream": "rgb", "mean": [float(x) for x in IMAGENET_RGB_MEAN], "std": [float(x) for x in IMAGENET_RGB_STD]}
    return {"stream": "flow", "flow_method": flow, "flow_length": fd.FLOW_LENGTH, "flow_bound": FLOW_BOUND}


def check_one_size(vids: list[fd.VideoFrames]) -> None:
    """A batch stacks whole frames from many videos: InputError naming the first video
    whose frame size differs from the most common one."""
    from collections import Counter

    from vidseg_cli.errors import InputError

    sizes = [tuple(v.frames.shape[1:3]) for v in vids]
    if len(set(sizes)) < 2:
        return
    (h, w), _ = Counter(sizes).most_common(1)[0]
    odd = next(v for v, hw in zip(vids, sizes) if hw != (h, w))
    oh, ow = odd.frames.shape[1:3]
    raise InputError(odd.path, f"frames are {ow}x{oh}, most training videos' {w}x{h}: a batch needs "
                               f"one size (extract every video with the same extract-frames --size)")


def open_frames(stack: contextlib.ExitStack, path: str, flow: str) -> fd.VideoFrames:
    v = fd.VideoFrames(path, flow_method=flow)
    stack.callback(v.close)
    return v


def open_val_frames(stack, frames: dict[str, str], val_gt, flow: str) -> list[fd.VideoFrames]:
    if val_gt is None:
        return []
    ids, _ = fd.select_videos(frames, val_gt, "frames")
    return [open_frames(stack, frames[v], flow) for v in ids]
