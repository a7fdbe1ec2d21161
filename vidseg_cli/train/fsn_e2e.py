"""`train fsn --end-to-end`: the clips of train/fsn.py from frames, the 2D backbone
fine-tuned with the temporal CNN (§3.5 "we train all layers"); the result is also split
into a backbone checkpoint (for extract-features) and an FSN checkpoint (for localize).

Under torchrun every rank draws the same class-balanced clips and flips from (seed, epoch)
and reads and trains on its share of them (train/distributed.py); the feature statistics
and the validation videos are split over the ranks and gathered; rank 0 alone splits
best.ckpt. No --sync-bn: the backbone's BatchNorm keeps its statistics (`freeze_bn`), and
without it each clip still passes the network alone, so it is normalised with its own
statistics on any rank, as in one process.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS, build_from_checkpoint, load_public_weights
from vidseg_cli.models.checkpoint.format import save_checkpoint
from vidseg_cli.models.checkpoint.weights import is_checkpoint, read_weights
from vidseg_cli.runtime import seed_everything
from vidseg_cli.train import distributed
from vidseg_cli.train.backbone import backbone_preprocess, open_frames, open_val_frames
from vidseg_cli.train.fsn import FSNSettings
from vidseg_cli.train.fsn_common import (
    epoch_rng,
    frame_metrics,
    make_trainer,
    soft_cross_entropy,
)


# -- FSN end to end ---------------------------------------------------------------------------
@dataclass
class EndToEndSettings(FSNSettings):
    snippet: int = 5  # frames per snippet (§3.5)
    stream: str = "rgb"
    flow: str = "farneback"
    backbone: str = ""  # our backbone checkpoint, or public weights (with arch)
    arch: str | None = None  # resnet18|resnet50|vgg16 for public weights
    freeze_bn: bool = True  # keep the backbone's BatchNorm statistics (small clip batches)
    stats_snippets: int = 512  # training snippets that measure the feature statistics


def _backbone_for_e2e(s: EndToEndSettings) -> nn.Module:
    raw = read_weights(s.backbone)
    channels = 3 if s.stream == "rgb" else 2 * fd.FLOW_LENGTH
    if is_checkpoint(raw):
        m, ckpt = build_from_checkpoint(s.backbone, expect_model=("resnet18", "resnet50", "vgg16"))
        if getattr(m, "in_channels", 3) != channels:
            raise InputError(s.backbone, f"backbone takes {m.in_channels}-channel input, not the {s.stream} stream")
        cfg = {**ckpt["config"], "num_classes": 0}
        out = MODELS.build(ckpt["model"], **cfg)
        sd = {k: v for k, v in m.state_dict().items() if k in out.state_dict()}  # drop the classifier
        out.load_state_dict(sd)
        return out
    if not s.arch:
        raise InputError(s.backbone, "public weights: say which network they are with --arch")
    out = MODELS.build(s.arch, num_classes=0, in_channels=channels)
    load_public_weights(raw, out, path=s.backbone)
    return out


def train_fsn_end_to_end(frames: dict[str, str], gt, val_gt, s: EndToEndSettings, run_dir: str,
                         resume: bool = False) -> dict[str, Any]:
    """Backbone + temporal CNN from frames; also writes RUN/backbone.ckpt (for extract-features)
    and RUN/fsn.ckpt (for localize) from best.ckpt."""
    from vidseg_cli.infer.features import snippet_center_frames
    from vidseg_cli.infer.fsn import slide_fsn

    seed_everything(s.seed)
    distributed.check_batch_size(s.batch_size)
    ids, notes = fd.select_videos(frames, gt, "frames")
    classes = ["background", *gt.classes]
    bb = _backbone_for_e2e(s).to(memory_format=torch.channels_last).eval()
    with contextlib.ExitStack() as stack:
        vids = [open_frames(stack, frames[v], s.flow) for v in ids]
        windows, vcenters, targets = [], [], []
        for i, v in enumerate(vids):
            y = fd.frame_targets(v.num_frames, v.fps, gt, v.video_id)
            c = snippet_center_frames(v.num_frames, s.snippet, s.snippet)
            targets.append(y)
            vcenters.append(c)
            windows += fd.clip_windows(c, s.snippet, y, s.clip_snippets, s.min_action_frames, i,
                                       s.window_step)
        if not windows:
            raise InputError(gt.path, "no training clip holds enough action frames")
        # feature statistics of the initial backbone on sampled training snippets
        rng = np.random.default_rng([s.seed, 10**6])
        allc = [(i, int(c)) for i, cs in enumerate(vcenters) for c in cs]
        pick = rng.choice(len(allc), min(s.stats_snippets, len(allc)), replace=False)

        @torch.no_grad()
        def snippet_feature(k: int) -> np.ndarray:  # one at a time: the same on any rank
            return bb.forward_features(torch.from_numpy(vids[allc[k][0]].inputs(
                [allc[k][1]], s.stream)).contiguous(memory_format=torch.channels_last)).numpy()

        f = np.concatenate(distributed.map_sharded(snippet_feature, [int(k) for k in pick]))
        sd_ = np.maximum(f.std(0), 0.01 * f.std(0).mean() + 1e-12)
        model = MODELS.build("fsn-e2e", backbone=bb.model_name, backbone_config=bb.model_config,
                             num_classes=len(classes), feature_mean=[float(x) for x in f.mean(0)],
                             feature_std=[float(x) for x in sd_], hidden=s.hidden, dropout=s.dropout)
        model.backbone.load_state_dict(bb.state_dict())
        model = model.to(memory_format=torch.channels_last)
        val = open_val_frames(stack, frames, val_gt, s.flow)
        labels = [w.label for w in windows]

        def batches(epoch: int):
            rng = epoch_rng(s.seed, epoch)
            for _ in range(s.steps_per_epoch):
                ws = [windows[k] for k in fd.balanced_choice(rng, labels, s.batch_size)]
                flip = rng.random(len(ws)) < 0.5  # drawn for the global batch, as one process does
                mine = distributed.shard(list(zip(ws, flip)))  # this rank's clips
                xs, ys, cs, T = [], [], [], max(w.frames[1] - w.frames[0] for w, _ in mine)
                for w, fl in mine:
                    c = vcenters[w.video][w.first:w.first + s.clip_snippets]
                    x = vids[w.video].inputs(c, s.stream)  # n x C x H x W
                    xs.append(torch.from_numpy(fd.flip_inputs(x, s.stream) if fl else x))
                    y = np.zeros((len(classes), T), np.float32)
                    y[:, :w.frames[1] - w.frames[0]] = targets[w.video][w.frames[0]:w.frames[1]].T
                    ys.append(y)
                    cs.append(torch.from_numpy(c - w.frames[0]))
                yield xs, torch.from_numpy(np.stack(ys)), cs

        def loss_step(m, batch):
            xs, y, cs = batch
            if s.freeze_bn:
                for mod in m.backbone.modules():
                    if isinstance(mod, nn.BatchNorm2d):
                        mod.eval()
            losses = []
            for b, (x, c) in enumerate(zip(xs, cs)):
                t = int(c[-1]) - (s.snippet - 1) // 2 + s.snippet
                logits = m(x[None], c.cpu(), t)  # 1 x (K+1) x t
                losses.append(soft_cross_entropy(logits, y[b:b + 1, :, :t]))
            return distributed.batch_mean(torch.stack(losses))  # over the global batch

        def video_probs(m, v: fd.VideoFrames) -> np.ndarray:
            dev = next(m.parameters()).device
            c = snippet_center_frames(v.num_frames, s.snippet, s.snippet)
            f = [m.features(torch.from_numpy(v.inputs(c[lo:lo + 64], s.stream)).to(
                dev, memory_format=torch.channels_last)).float().cpu().numpy() for lo in range(0, len(c), 64)]
            f = np.concatenate(f) if f else np.zeros((0, m.fsn.tcnn.in_features), np.float32)
            return slide_fsn(m.fsn, f, c, v.num_frames, s.clip_snippets)

        def validate(m) -> dict[str, float]:
            return frame_metrics(distributed.map_sharded(lambda v: video_probs(m, v), val), val, val_gt)

        extra = {"recipe": "fsn-end-to-end", **asdict(s), "gt": gt.path, "subset": gt.subset,
                 "val_subset": val_gt.subset if val_gt else None, "train_videos": len(ids)}
        tr = make_trainer(model, classes, s, run_dir, extra, "frame_mAP" if val else None, resume,
                          sharded=True)
        hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    summary = {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes,
               "clips": len(windows)}
    if distributed.current().main:  # the ranks hold the same weights; rank 0 alone writes
        _split_best(Path(run_dir), classes, s)
    distributed.barrier()
    return summary


def _split_best(run_dir: Path, classes: list[str], s: EndToEndSettings) -> None:
    """RUN/backbone.ckpt (for extract-features) and RUN/fsn.ckpt (for localize) from best.ckpt."""
    best, ck = build_from_checkpoint(run_dir / "best.ckpt", expect_model="fsn-e2e")
    save_checkpoint(run_dir / "backbone.ckpt", best.backbone, classes,
                    preprocess=backbone_preprocess(s.stream, s.flow))
    sig = {"backbone": best.backbone.model_name, "stream": s.stream, "snippet": s.snippet,
           "feature_dim": best.backbone.feature_dim, "flow_method": s.flow if s.stream == "flow" else "none"}
    save_checkpoint(run_dir / "fsn.ckpt", best.fsn, classes,
                    preprocess={"features": sig, "feature_mean": ck["config"]["feature_mean"],
                                "feature_std": ck["config"]["feature_std"], "clip_snippets": s.clip_snippets})
