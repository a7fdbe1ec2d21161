"""Training recipes of the FSN stages, each a set of batches and a loss for train/engine.py.

- `train_backbone`: a 2D CNN frame classifier, TSN-style (FSN §3.2 uses TSN's networks):
  single frames (rgb) or 5 stacked flow fields (flow) around a frame, labelled by the
  temporal ground truth, drawn class-balanced, randomly flipped; K+1 classes.
- `train_fsn`: the temporal CNN (FSN §3.3) on pre-extracted features. Clips of
  `clip_snippets` consecutive snippets (§3.5: N = 7, T = 35 frames) slid over each video,
  kept when they hold at least `min_action_frames` action frames (§3.5: 5), drawn
  class-balanced by their dominant action; frame-wise cross-entropy (Eq. 4) after linear
  upsampling to the clip's frames. SGD, lr 1e-4, momentum 0.9, weight decay 5e-4, batch 12
  (§3.5) by default.
- `train_fsn_end_to_end`: the same clips from frames, the 2D backbone fine-tuned with the
  temporal CNN (§3.5 "we train all layers"); the result is also split into a backbone
  checkpoint (for extract-features) and an FSN checkpoint (for localize).
- `train_wfsn`: video-level labels only (§3.4/§3.5): each video cut into M = 100 equal
  segments, one random snippet feature from each, the temporal CNN's K scores pooled over
  them (max by default, Eq. 2) and a softmax cross-entropy on the pooled score (Eq. 3)
  against the video's classes (uniform over them when there are several).

Validation (per epoch) slides the network over whole validation videos as `localize`
does and reports frame-level mAP (FSN Table 1) and, for fsn/wfsn, segment mAP at tIoU
0.5 (activitynet protocol) through the metrics package.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.errors import InputError
from vidseg_cli.models import MODELS, build_from_checkpoint, load_public_weights
from vidseg_cli.models.checkpoint import is_checkpoint, read_weights, save_checkpoint
from vidseg_cli.runtime import resolve_device, seed_everything
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


def _trainer(model, classes, c: Common, run_dir, extra: dict, monitor: str, resume: bool) -> Trainer:
    opt, sched = _optimizer(model, c)
    s = TrainSettings(epochs=c.epochs, max_steps=c.max_steps, seed=c.seed, amp=c.amp,
                      grad_clip=c.grad_clip, monitor=monitor, monitor_mode="max", quiet=c.quiet,
                      extra=extra)
    tr = Trainer(model, classes, opt, run_dir, s, resolve_device(c.device), scheduler=sched)
    last = Path(run_dir) / "last.ckpt"
    if resume:
        if not last.exists():
            raise InputError(last, "nothing to resume: no last.ckpt in the run folder")
        tr.resume(last)
    elif last.exists():
        raise InputError(run_dir, "holds a run already (last.ckpt); use --resume to continue it "
                                  "or another folder")
    return tr


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Cross-entropy against a target distribution along `dim`, averaged over the rest
    (Eq. 4 with one-hot targets; averaged over frames as well as the batch, which only
    rescales the paper's sum over frames)."""
    return -(target * F.log_softmax(logits.float(), dim=dim)).sum(dim=dim).mean()


# -- validation, shared with localize ---------------------------------------------------------
def _frame_metrics(probs: list[np.ndarray], videos: list, gt, score: str = "mean") -> dict[str, float]:
    """Frame mAP (FSN Table 1) and segment mAP@0.5 (activitynet) of per-video (T, K+1) probs,
    runs scored as localize scores them (`score`: api/localize_fsn.py DEFAULT_SEGMENT_SCORE)."""
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
        vids = [_open(stack, frames[v], s.flow) for v in ids]
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
        val = _open_val(stack, frames, val_gt, s.flow)

        def batches(epoch: int):
            rng = _epoch_rng(s.seed, epoch)
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
        tr = _trainer(model, classes, s, run_dir, extra, "frame_mAP" if val else None, resume)
        hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes}


def backbone_preprocess(stream: str, flow: str) -> dict:
    """How a backbone's inputs are made (checkpoint `preprocess`; extract-features follows it)."""
    from vidseg_cli.video.flow import FLOW_BOUND

    if stream == "rgb":
        return {"stream": "rgb", "mean": [float(x) for x in fd.RGB_MEAN], "std": [float(x) for x in fd.RGB_STD]}
    return {"stream": "flow", "flow_method": flow, "flow_length": fd.FLOW_LENGTH, "flow_bound": FLOW_BOUND}


def _open(stack: contextlib.ExitStack, path: str, flow: str) -> fd.VideoFrames:
    v = fd.VideoFrames(path, flow_method=flow)
    stack.callback(v.close)
    return v


def _open_val(stack, frames: dict[str, str], val_gt, flow: str) -> list[fd.VideoFrames]:
    if val_gt is None:
        return []
    ids, _ = fd.select_videos(frames, val_gt, "frames")
    return [_open(stack, frames[v], flow) for v in ids]


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


def _standardize(videos: list[fd.FeatureVideo], mu: np.ndarray, sd: np.ndarray) -> None:
    for v in videos:
        v.features = ((v.features - mu) / sd).astype(np.float32)


def _fsn_preprocess(videos, mu, sd, **more) -> dict:
    """What localize needs to prepare features exactly as training did (checkpoint `preprocess`)."""
    sig = fd.feature_signature(videos[0].attrs, videos[0].features.shape[1])
    sig["flow_method"] = str(videos[0].attrs.get("flow_method", "none"))
    return {"features": sig, "feature_mean": [float(x) for x in mu],
            "feature_std": [float(x) for x in sd], **more}


def _fsn_extra(s, videos: list[fd.FeatureVideo], gt, val_gt, recipe: str) -> dict:
    sig = fd.feature_signature(videos[0].attrs, videos[0].features.shape[1])
    return {"recipe": recipe, **asdict(s), "features": {**sig, "flow_method": str(
        videos[0].attrs.get("flow_method", "none"))}, "gt": gt.path, "subset": gt.subset,
        "val_subset": val_gt.subset if val_gt else None, "train_videos": len(videos)}


def train_fsn(features: dict[str, str], gt, val_gt, s: FSNSettings, run_dir: str,
              resume: bool = False) -> dict[str, Any]:
    """FSN's temporal CNN on features (module docstring). Returns a summary."""
    from vidseg_cli.infer.fsn import slide_fsn

    seed_everything(s.seed)
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
    val = _val_features(features, val_gt, videos)
    D = videos[0].features.shape[1]
    model = MODELS.build("fsn", in_features=D, num_classes=len(classes), hidden=s.hidden,
                         dropout=s.dropout)
    mu, sd = feature_stats(videos)
    model.preprocess = _fsn_preprocess(videos, mu, sd, clip_snippets=s.clip_snippets)  # saved with it
    _standardize(videos + val, mu, sd)
    labels = [w.label for w in windows]

    def batches(epoch: int):
        rng = _epoch_rng(s.seed, epoch)
        for _ in range(s.steps_per_epoch):
            yield _clip_batch([windows[k] for k in fd.balanced_choice(rng, labels, s.batch_size)],
                              videos, s.clip_snippets)

    def loss_step(m, batch):
        x, y, centers, mask = batch  # B x N x D, B x (K+1) x T, B x N, B x T
        return _clip_loss(m, x, y, centers, mask)

    def validate(m) -> dict[str, float]:
        probs = [slide_fsn(m, v.features, v.centers, v.num_frames, s.clip_snippets) for v in val]
        return _frame_metrics(probs, val, val_gt)

    tr = _trainer(model, classes, s, run_dir, _fsn_extra(s, videos, gt, val_gt, "fsn"),
                  "frame_mAP" if val else None, resume)
    hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes,
            "clips": len(windows)}


def _val_features(features, val_gt, train_videos) -> list[fd.FeatureVideo]:
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
    return torch.stack(losses).mean()


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
    ids, notes = fd.select_videos(frames, gt, "frames")
    classes = ["background", *gt.classes]
    bb = _backbone_for_e2e(s).to(memory_format=torch.channels_last).eval()
    with contextlib.ExitStack() as stack:
        vids = [_open(stack, frames[v], s.flow) for v in ids]
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
        with torch.no_grad():
            f = np.concatenate([bb.forward_features(torch.from_numpy(vids[allc[k][0]].inputs(
                [allc[k][1]], s.stream)).contiguous(memory_format=torch.channels_last)).numpy() for k in pick])
        sd_ = np.maximum(f.std(0), 0.01 * f.std(0).mean() + 1e-12)
        model = MODELS.build("fsn-e2e", backbone=bb.model_name, backbone_config=bb.model_config,
                             num_classes=len(classes), feature_mean=[float(x) for x in f.mean(0)],
                             feature_std=[float(x) for x in sd_], hidden=s.hidden, dropout=s.dropout)
        model.backbone.load_state_dict(bb.state_dict())
        model = model.to(memory_format=torch.channels_last)
        val = _open_val(stack, frames, val_gt, s.flow)
        labels = [w.label for w in windows]

        def batches(epoch: int):
            rng = _epoch_rng(s.seed, epoch)
            for _ in range(s.steps_per_epoch):
                ws = [windows[k] for k in fd.balanced_choice(rng, labels, s.batch_size)]
                flip = rng.random(len(ws)) < 0.5
                xs, ys, cs, T = [], [], [], max(w.frames[1] - w.frames[0] for w in ws)
                for w, fl in zip(ws, flip):
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
            return torch.stack(losses).mean()

        def validate(m) -> dict[str, float]:
            dev = next(m.parameters()).device
            probs = []
            for v in val:
                c = snippet_center_frames(v.num_frames, s.snippet, s.snippet)
                f = [m.features(torch.from_numpy(v.inputs(c[lo:lo + 64], s.stream)).to(
                    dev, memory_format=torch.channels_last)).float().cpu().numpy() for lo in range(0, len(c), 64)]
                f = np.concatenate(f) if f else np.zeros((0, m.fsn.tcnn.in_features), np.float32)
                probs.append(slide_fsn(m.fsn, f, c, v.num_frames, s.clip_snippets))
            return _frame_metrics(probs, val, val_gt)

        extra = {"recipe": "fsn-end-to-end", **asdict(s), "gt": gt.path, "subset": gt.subset,
                 "val_subset": val_gt.subset if val_gt else None, "train_videos": len(ids)}
        tr = _trainer(model, classes, s, run_dir, extra, "frame_mAP" if val else None, resume)
        hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    best, ck = build_from_checkpoint(Path(run_dir) / "best.ckpt", expect_model="fsn-e2e")
    save_checkpoint(Path(run_dir) / "backbone.ckpt", best.backbone, classes,
                    preprocess=backbone_preprocess(s.stream, s.flow))
    sig = {"backbone": best.backbone.model_name, "stream": s.stream, "snippet": s.snippet,
           "feature_dim": best.backbone.feature_dim, "flow_method": s.flow if s.stream == "flow" else "none"}
    save_checkpoint(Path(run_dir) / "fsn.ckpt", best.fsn, classes,
                    preprocess={"features": sig, "feature_mean": ck["config"]["feature_mean"],
                                "feature_std": ck["config"]["feature_std"], "clip_snippets": s.clip_snippets})
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes,
            "clips": len(windows)}


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
    ids, notes = fd.select_videos(features, gt, "features")
    videos = [v for v in fd.load_feature_videos(features, ids) if len(v.features)]
    for v in videos:
        v.labels = fd.video_labels(gt, v.video_id)
    videos = [v for v in videos if v.labels.sum() > 0]  # §3.4: a video label needs an action
    if not videos:
        raise InputError(gt.path, "no training video has both features and an action label")
    classes = ["background", *gt.classes]
    val = _val_features(features, val_gt, videos)
    D = videos[0].features.shape[1]
    model = MODELS.build("wfsn", in_features=D, num_classes=len(gt.classes), pooling=s.pooling,
                         hidden=s.hidden, dropout=s.dropout)
    mu, sd = feature_stats(videos)
    model.preprocess = _fsn_preprocess(videos, mu, sd)
    _standardize(videos + val, mu, sd)
    groups = [int(np.flatnonzero(v.labels)[0]) for v in videos]  # balance by a class of the video

    def batches(epoch: int):
        rng = _epoch_rng(s.seed, epoch)
        for _ in range(s.steps_per_epoch):
            pick = fd.balanced_choice(rng, groups, s.batch_size)
            x = np.stack([_segment_sample(rng, videos[k].features, s.segments) for k in pick])
            y = np.stack([videos[k].labels / videos[k].labels.sum() for k in pick])
            yield torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))

    def loss_step(m, batch):
        x, y = batch  # B x M x D, B x K
        return soft_cross_entropy(m(x), y)  # Eq. 3 + cross-entropy

    def validate(m) -> dict[str, float]:
        probs = [wfsn_frame_probs(m, v.features, v.centers, v.num_frames) for v in val]
        return _frame_metrics(probs, val, val_gt, DEFAULT_SEGMENT_SCORE["wfsn"])

    tr = _trainer(model, classes, s, run_dir, _fsn_extra(s, videos, gt, val_gt, "wfsn"),
                  "mAP@0.5" if val else None, resume)
    hist = tr.fit(batches, loss_step, validate if val else None, s.steps_per_epoch)
    return {"run_dir": str(run_dir), "history": hist, "notes": notes, "classes": classes}


def _segment_sample(rng: np.random.Generator, feats: np.ndarray, m: int) -> np.ndarray:
    """§3.5: M equal segments of the video, one random snippet from each: M x D. With fewer
    than M snippets a segment is shorter than one and snippets repeat."""
    n = len(feats)
    lo = np.floor(np.arange(m) * n / m).astype(np.int64)
    hi = np.maximum(np.floor(np.arange(1, m + 1) * n / m).astype(np.int64), lo + 1)
    return feats[np.minimum(rng.integers(lo, hi), n - 1)]
