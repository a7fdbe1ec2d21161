"""Training Sep3D's action-classification head (`vidseg train sep3d-head`), on a frozen
segmenter or jointly with it (`joint`).

Sep3D §4 (J-HMDB): after segmenting the actor, "the region with maximum area is selected
through connected component. On the final feature map of each frame, we crop a box to
tightly surround the selected foreground region and resize the box into a fixed shape.
Finally, the cropped feature map goes through a classifier to predict action classes",
trained with softmax cross-entropy. `models/sep3d.py: MaskActionClassifier` is that head.

What we fix where the paper is silent:

- **Frozen segmenter** (the default). The head trains on top of a Sep3D trained by `train
  segment`; the Sep3D runs in eval mode (BatchNorm running statistics kept) without
  gradients, so a step costs one forward pass of the segmenter per clip and the
  segmentation stays what it was.
- **Joint fine-tune** (`joint`, Sep3D §4: "we use softmax cross entropy loss to back
  propagate gradients for all the weights"). The segmenter trains too, in train mode
  (BatchNorm statistics update), with the head's cross-entropy flowing back through the
  cropped decoder features. The paper names only the classification loss; training on it
  alone would let the segmentation drift, and at inference the boxes come from that
  segmentation, so we add `train segment`'s own loss (`weighted_cross_entropy`) on the same
  clips, weighted by `seg_loss_weight`: loss = head CE + seg_loss_weight * segmentation CE.
  The segmentation target is the one the segmenter was trained for: foreground (labels > 0)
  for a background/foreground Sep3D, the dataset's classes for one with the dataset's
  classes; its class weights are those the segmenter was trained with where they are
  recorded (the checkpoint's training settings or state, or the `config.json` of the `train segment`
  run beside it that describes the same model), else (1, 1), the synthetic Sep3D recipe's
  (`segmenter_class_weights`). Every clip of the batch goes through the segmenter (clips
  without an actor still teach background). One Adam, two parameter groups: the head at
  `lr` (with `weight_decay`), the segmenter at `lr * segmenter_lr_mult` without weight
  decay (the Sep3D recipes of `train segment` use none); the gradient clip covers both.
  The checkpoints hold the fine-tuned segmenter (weights and BatchNorm statistics);
  `segmenter_checkpoint` still names the one it started from. On the synthetic set it
  classifies better than the frozen head but lets the segmentation drift, so its boxes,
  and its frame-mAP, are worse (docs/segment3d.md, head_learning.json).
- **Ground-truth masks in training.** The paper does not say which masks the head sees
  while it learns. We take the largest connected component of the *ground-truth*
  foreground (stages/components.py), so every training box is an actor and its label is
  right; at inference (`segment-3d`) the head sees the *predicted* masks. The target of a
  frame is the most frequent action class among that component's pixels; frames without
  an actor are skipped.
- **Clips** are cut as `train segment` cuts them (datasets/segment_data.py), with the
  segmenter's own preprocessing (mean/std, short side, clip length), whole frames (no
  spatial crop: inference runs whole frames), random horizontal flips, and 90 % of the
  clips centred on an action (`action_bias`). Every frame of a clip reads the decoder
  feature frame covering it (`feature_frame_index`).
- **Recipe** (`HeadRecipe`, ours): Adam, learning rate 3e-4 decayed by 0.95 per epoch,
  batches of 4 clips, 4 clips per video per epoch, 12 epochs, crop 7 x 7, 128 channels in
  the head's conv. The rate is low for Adam because the linear layer sees 7 * 7 * 128 =
  6272 inputs whose absolute sum is ~3000 on the synthetic features: an early Adam step
  moves every weight by about the rate, so 1e-3 swings the logits by ~3 per step and the
  loss jumps (measured; 3e-4 learns as far in 400 steps without the jumps). On the default
  synthetic set on top of sample_data/weights/sep3d_synth.ckpt this learns in a few CPU
  minutes (docs/segment3d.md, benchmarks/segment3d/head_learning.json).
- **Validation** (picks best.ckpt): the head's accuracy with ground-truth masks over every
  frame with an actor of the first `val_videos` validation videos (`head_accuracy`). With
  `joint` also `foreground_iou_clips`: the segmenter's foreground IoU on the same videos
  from the same forward pass (argmax of each back-to-back clip at the network's input
  size, pooled over every frame; not `segment-3d`'s averaged overlapping clips, so close
  to but not the `foreground_iou` that `train segment` reports), and the same validation
  of the starting model is recorded in config.json (`val_before_training`) to compare.

The checkpoint is one self-contained file: model "sep3d+head" (`Sep3DWithHead`), holding
the segmenter's weights and config, the head's weights, `action_names` (the dataset's
classes without background: J-HMDB's 21 from its folders, the synthetic set's motions),
the segmenter checkpoint it started from (path and SHA-256) and the segmenter's
preprocessing, so `segment-3d --model sep3d --weights RUN/last.ckpt` runs both.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError

IGNORE_FRAME = -100  # cross_entropy's ignore_index: a frame without an actor


@dataclass
class HeadRecipe:
    """Every setting of a head training run besides the data and the run folder."""

    lr: float = 3e-4  # Adam learning rate (module docstring: why not 1e-3)
    lr_decay: float = 0.95  # multiplied in after every epoch
    weight_decay: float = 0.0  # L2 on the head's parameters
    batch_size: int = 4  # clips per step
    epochs: int = 12  # passes over the training videos
    clips_per_video: int = 4  # clips per training video per epoch
    action_bias: float = 0.9  # probability of centring a clip on an action pixel
    flip: bool = True  # random horizontal mirror
    crop: int = 7  # side of the box resized on the feature map
    hidden: int = 128  # channels of the head's 3x3 conv
    grad_clip: float | None = 5.0  # gradient norm clip (head and, when joint, segmenter)
    joint: bool = False  # fine-tune the segmenter with the head (module docstring)
    segmenter_lr_mult: float = 0.1  # joint: the segmenter's rate is lr times this
    seg_loss_weight: float = 1.0  # joint: weight of the segmentation loss in the sum
    segmenter_bn: str = "update"  # joint: "update" BatchNorm statistics, or keep them "frozen"


@dataclass
class HeadTrainOptions:
    segmenter: str  # a sep3d checkpoint from `train segment`
    data: str  # dataset folder (synthetic or J-HMDB layout)
    run_dir: str  # checkpoints, log.jsonl, config.json
    recipe: HeadRecipe
    max_steps: int | None = None  # stop after this many steps
    resume: bool = False  # continue from run_dir/last.ckpt
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    val_videos: int = 4  # validation videos per epoch (0 = all)
    split: int = 1  # J-HMDB split
    quiet: bool = False


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_head_model(segmenter_path: str, action_names: list[str], recipe: HeadRecipe):
    """A "sep3d+head" model: the segmenter checkpoint's weights, a fresh head.
    Returns (model, segmenter classes); `model.preprocess` is the segmenter's."""
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint import build_from_checkpoint, load_state_dict_checked
    from vidseg_cli.models.preprocess import default_preprocess

    seg, ckpt = build_from_checkpoint(segmenter_path, expect_model="sep3d")
    source = {"path": str(Path(segmenter_path).resolve()), "sha256": file_sha256(segmenter_path)}
    model = MODELS.build("sep3d+head", segmenter=ckpt["config"], action_names=list(action_names),
                         crop=recipe.crop, hidden=recipe.hidden, segmenter_checkpoint=source)
    load_state_dict_checked(model.segmenter, seg.state_dict(), segmenter_path)
    given = ckpt.get("preprocess") if isinstance(ckpt.get("preprocess"), dict) else {}
    model.preprocess = {**default_preprocess("sep3d"), **given}
    return model.train(), list(ckpt["classes"])


# -- targets -------------------------------------------------------------------------------
def frame_targets(labels: np.ndarray, num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ... x H x W class labels (0 background, 255 padding): the box
    [x0, y0, x1, y1) around the largest ground-truth actor region and its action index
    (the region's most frequent class - 1); IGNORE_FRAME where the frame has no actor.
    Returns (boxes ... x 4 float32, targets ... int64)."""
    from vidseg_cli.datasets.segment_data import IGNORE
    from vidseg_cli.models.sep3d import region_boxes
    from vidseg_cli.stages.components import component_classes, largest_component

    lab = np.asarray(labels)
    keep, valid = largest_component((lab > 0) & (lab != IGNORE))  # labelled once per frame
    boxes = region_boxes(keep)
    cls = component_classes(lab, keep, ignore=IGNORE)
    target = np.where(valid, cls - 1, IGNORE_FRAME).astype(np.int64)
    bad = valid & ((target < 0) | (target >= num_actions))
    if bad.any():
        raise ValueError(f"label {int(cls[bad][0])} is not one of the {num_actions} action classes")
    return boxes.astype(np.float32), target


def segmentation_target(labels: np.ndarray, target: str) -> np.ndarray:
    """The segmenter's training target for ... x H x W class labels, as `train segment`
    builds it (`to_target`: "foreground" = labels > 0, or "classes"), padding (IGNORE)
    kept ignored. int64."""
    from vidseg_cli.datasets.segment_data import IGNORE, to_target

    lab = np.asarray(labels)
    out = to_target(lab, target).astype(np.int64)
    out[lab == IGNORE] = IGNORE
    return out


def head_logits(model, x, boxes, target):
    """Logits (N x A) of the N frames with an actor, and their targets (N,). x: B x 3 x T x
    H x W clips; boxes: B x T x 4; target: B x T (IGNORE_FRAME = no actor). Clips without
    an actor are not run through the segmenter at all; the segmenter runs without
    gradients (frozen)."""
    import torch

    has = (target != IGNORE_FRAME).any(dim=1)  # B
    if not bool(has.all()):
        x, boxes, target = x[has], boxes[has], target[has]
    b, t = target.shape
    if b == 0:
        a = len(model.action_names)
        return x.new_zeros((0, a)), target.reshape(-1)
    with torch.no_grad():  # the segmenter is frozen
        _, feats = model.segmenter.forward_with_features(x)  # B x D x T/2 x H/4 x W/4
    return head_logits_from_features(model, feats, boxes, target, tuple(x.shape[-2:]))


def head_logits_from_features(model, feats, boxes, target, image_size):
    """head_logits on decoder features already computed: feats B x D x T' x h x w of B
    clips of T frames of `image_size` (H, W); boxes B x T x 4; target B x T. Returns
    (N x A logits, N targets) of the frames with an actor."""
    from vidseg_cli.models.sep3d import frames_of

    b, t = target.shape
    keep = (target.reshape(-1) != IGNORE_FRAME).nonzero().flatten()
    if keep.numel() == 0:
        return feats.new_zeros((0, len(model.action_names))), target.reshape(-1)[keep]
    maps = frames_of(feats, t)[keep]  # N x D x h x w
    logits = model.head.classify(maps, boxes.reshape(b * t, 4)[keep], tuple(image_size))
    return logits, target.reshape(-1)[keep]


def head_loss(model, batch):
    """Softmax cross-entropy over the frames with an actor (Sep3D §4)."""
    import torch.nn.functional as F

    logits, target = head_logits(model, batch["x"], batch["boxes"], batch["target"])
    if target.numel() == 0:
        return model.head.fc.bias.sum() * 0.0  # no actor in this batch
    return F.cross_entropy(logits.float(), target)


def joint_loss_terms(model, batch, seg_weight=None):
    """The two terms of the joint fine-tune (module docstring) from one forward pass of the
    segmenter with gradients over every clip of the batch: (head cross-entropy over the
    frames with an actor, `weighted_cross_entropy` of the per-pixel logits against
    batch["seg_target"] with class weights `seg_weight`)."""
    import torch.nn.functional as F

    from vidseg_cli.train.segment import weighted_cross_entropy

    x = batch["x"]
    seg_logits, feats = model.segmenter.forward_with_features(x)  # B x K x T x H x W, features
    seg = weighted_cross_entropy(seg_logits, batch["seg_target"], seg_weight)
    logits, target = head_logits_from_features(model, feats, batch["boxes"], batch["target"],
                                               tuple(x.shape[-2:]))
    if target.numel() == 0:
        head = model.head.fc.bias.sum() * 0.0  # no actor in this batch
    else:
        head = F.cross_entropy(logits.float(), target)
    return head, seg


def joint_loss(model, batch, seg_weight=None, seg_loss_weight: float = 1.0):
    """Head cross-entropy + seg_loss_weight * segmentation cross-entropy."""
    head, seg = joint_loss_terms(model, batch, seg_weight)
    return head + seg_loss_weight * seg


# The synthetic Sep3D recipe's (train/segment.py; a test keeps them equal): the shipped
# sample_data/weights/sep3d_synth.ckpt, a best.ckpt without training state, was trained so.
DEFAULT_SEG_CLASS_WEIGHTS = (1.0, 1.0)


def segmenter_class_weights(path: str | os.PathLike) -> tuple[tuple[float, float] | None, str]:
    """The (background, action) class weights the segmenter checkpoint at `path` was
    trained with, and where they were found: its `training` settings (every checkpoint the
    Trainer writes since stop 11), else its training state (an older `train segment`
    last.ckpt), else the `config.json` beside it when that run's model, config and classes
    are the checkpoint's (an older best.ckpt in its run folder), else
    DEFAULT_SEG_CLASS_WEIGHTS. None = unweighted (recorded as such)."""
    import json

    from vidseg_cli.models.checkpoint import read_checkpoint
    from vidseg_cli.train.engine import checkpoint_settings

    def weights(recipe):
        if not isinstance(recipe, Mapping) or "class_weights" not in recipe:
            return False, None
        w = recipe["class_weights"]
        return True, (None if w is None else (float(w[0]), float(w[1])))

    ckpt = read_checkpoint(path)
    settings, key = checkpoint_settings(ckpt)
    found, w = weights(settings.get("recipe") if settings is not None else None)
    if found:
        return w, f"{path} ({'training settings' if key == 'training' else 'training state'})"
    cfg = Path(path).parent / "config.json"
    if cfg.is_file():
        try:
            run = json.loads(cfg.read_text())
        except (OSError, ValueError):
            run = None
        if (isinstance(run, dict) and run.get("model") == ckpt["model"]
                and run.get("model_config") == ckpt["config"] and run.get("classes") == ckpt["classes"]
                and isinstance(run.get("settings"), Mapping) and run["settings"].get("task") == "segment"):
            found, w = weights(run["settings"].get("recipe"))
            if found:
                return w, str(cfg)
    return DEFAULT_SEG_CLASS_WEIGHTS, "not recorded with the segmenter: the synthetic recipe's default"


def segmentation_target_name(path: str | os.PathLike, seg_classes: list[str], ds_classes: list[str]) -> str:
    """"foreground" for a background/foreground segmenter, "classes" for one trained on
    the dataset's classes; an InputError naming `path` otherwise."""
    from vidseg_cli.datasets.segment_data import FOREGROUND_CLASSES

    if list(seg_classes) == list(FOREGROUND_CLASSES):
        return "foreground"
    if list(seg_classes) == list(ds_classes):
        return "classes"
    raise InputError(path, f"the segmenter's classes {seg_classes} are neither background/foreground "
                           f"nor the dataset's {ds_classes}: no segmentation loss for --joint")


# -- accuracy with ground-truth masks ----------------------------------------------------------
FEATURE_CACHE_BYTES = 512 << 20  # a frozen segmenter's validation features kept between epochs


def head_accuracy(model, videos, preprocess: dict, device, batch_size: int = 4,
                  segmentation: bool = False, feature_cache: dict | None = None) -> dict[str, Any]:
    """The head's accuracy with ground-truth masks: every frame with an actor of `videos`,
    whole frames at the network size, clips of `clip_len` frames back to back (the last
    ending on the last frame; each frame counted once). Returns {"accuracy_gt_masks",
    "loss" (mean cross-entropy), "frames", "per_class": {action: [correct, frames]}}.

    segmentation: every clip (with an actor or not) goes through the segmenter, and the
    result adds "foreground_iou_clips": |pred & gt| / |pred | gt| summed over every frame
    of `videos` (each counted once), pred = argmax class != 0 of its clip's logits, gt =
    label > 0, at the network's input size; and "segmented_frames".

    feature_cache: a dict kept between calls while the segmenter is frozen (without
    `segmentation`): the segmenter's features of each group of clips are then computed
    once (up to FEATURE_CACHE_BYTES in all; the rest every call) and reused."""
    import torch
    import torch.nn.functional as F

    from vidseg_cli.models.preprocess import clip_starts, network_size, normalize, resize_frames

    n_act = len(model.action_names)
    correct = total = 0
    loss_sum = 0.0
    per_class = np.zeros((n_act, 2), dtype=np.int64)
    fg_inter = fg_union = seg_frames = 0
    model.eval()
    for v in videos:
        frames, labels = v.load()
        t, h, w = labels.shape
        size = network_size(h, w, preprocess.get("short_side"))
        frames, labels = resize_frames(frames, size), resize_frames(labels, size, nearest=True)
        n = min(int(preprocess.get("clip_len") or 8), t)
        starts = clip_starts(t, n, n)
        seen = np.zeros(t, dtype=bool)
        for i in range(0, len(starts), batch_size):
            group = starts[i : i + batch_size]
            y = np.stack([labels[s : s + n] for s in group])  # B x n x H x W
            boxes, target = frame_targets(y, n_act)
            new = np.zeros((len(group), n), dtype=bool)  # frames no earlier clip covered
            for k, s in enumerate(group):  # frames an earlier clip already scored
                new[k] = ~seen[s : s + n]
                target[k, seen[s : s + n]] = IGNORE_FRAME
                seen[s : s + n] = True
            use = [k for k in range(len(group)) if (target[k] != IGNORE_FRAME).any()]
            if not segmentation:
                if not use:
                    continue  # no actor: nothing to classify, no need to run the segmenter
                group, boxes, target = [group[k] for k in use], boxes[use], target[use]
            key = (v.video_id, tuple(group))
            feats = feature_cache.get(key) if feature_cache is not None and not segmentation else None
            if feats is None:
                x = torch.stack([normalize(frames[s : s + n], preprocess["mean"], preprocess["std"])
                                 for s in group]).to(device)  # B x 3 x n x H x W
                with torch.no_grad():
                    seg_logits, feats = model.segmenter.forward_with_features(x)
                if segmentation:
                    pred = (seg_logits.argmax(dim=1) != 0).cpu().numpy()[new]  # N x H x W
                    gt = y[new] > 0
                    fg_inter += int(np.count_nonzero(pred & gt))
                    fg_union += int(np.count_nonzero(pred | gt))
                    seg_frames += int(new.sum())
                    if not use:
                        continue
                    feats, boxes, target = feats[use], boxes[use], target[use]
                elif feature_cache is not None and (
                        sum(f.nbytes for f in feature_cache.values()) + feats.nbytes <= FEATURE_CACHE_BYTES):
                    feature_cache[key] = feats
            with torch.no_grad():
                logits, tg = head_logits_from_features(
                    model, feats, torch.from_numpy(boxes).to(device),
                    torch.from_numpy(target).to(device), size)
            loss_sum += float(F.cross_entropy(logits.float(), tg, reduction="sum"))
            pred = logits.argmax(dim=1).cpu().numpy()
            tg = tg.cpu().numpy()
            correct += int((pred == tg).sum())
            total += int(tg.size)
            np.add.at(per_class, (tg, 0), (pred == tg).astype(np.int64))
            np.add.at(per_class, (tg, 1), 1)
    out = {"accuracy_gt_masks": correct / total if total else float("nan"),
           "loss": loss_sum / total if total else float("nan"), "frames": total,
           "per_class": {model.action_names[k]: [int(c), int(m)] for k, (c, m) in enumerate(per_class) if m}}
    if segmentation:  # empty union (no foreground anywhere): 1, metrics/masks.py's convention
        out["foreground_iou_clips"] = fg_inter / fg_union if fg_union else 1.0
        out["segmented_frames"] = seg_frames
    return out


# -- the run ---------------------------------------------------------------------------------
def check_actions(path: str | os.PathLike, have: list[str], want: list[str]) -> None:
    """One-line InputError naming `path` when a head's action classes are not the data's."""
    if list(have) != list(want):
        raise InputError(path, f"the head's action classes {have} differ from the dataset's {want}")


def train_head(opts: HeadTrainOptions, log=print) -> dict[str, Any]:
    """Run one head training (module docstring); returns a summary with the epoch history."""
    import torch

    from vidseg_cli.datasets.segment_data import (
        ClipSpec,
        SegmentClips,
        collate,
        open_segment_dataset,
    )
    from vidseg_cli.models.checkpoint import check_checkpoint_fits, read_checkpoint
    from vidseg_cli.runtime import resolve_device, seed_everything
    from vidseg_cli.train.engine import Trainer, TrainSettings, checkpoint_settings
    from vidseg_cli.train.segment import class_weight_vector

    r = opts.recipe
    if r.joint and not r.segmenter_lr_mult > 0:
        raise ValueError(f"segmenter_lr_mult must be > 0, got {r.segmenter_lr_mult}")
    if r.joint and not r.seg_loss_weight >= 0:
        raise ValueError(f"seg_loss_weight must be >= 0, got {r.seg_loss_weight}")
    if r.segmenter_bn not in ("update", "frozen"):
        raise ValueError(f"segmenter_bn must be 'update' or 'frozen', got {r.segmenter_bn!r}")
    device = resolve_device(opts.device)
    ds = open_segment_dataset(opts.data, target="classes", split=opts.split)
    if ds.layout == "davis":
        raise InputError(opts.data, "DAVIS labels name no actions: the head needs a dataset with "
                                    "action classes (synthetic or J-HMDB)")
    actions = list(ds.classes[1:])
    if not actions:
        raise InputError(opts.data, "the dataset has no action classes")
    if not ds.train:
        raise InputError(opts.data, "no training videos")
    for w in ds.warnings:
        log(f"warning: {w}")
    seed_everything(opts.seed)
    model, seg_classes = build_head_model(opts.segmenter, actions, r)
    pre = model.preprocess
    spec = ClipSpec(clip_len=int(pre.get("clip_len") or 8), crop=None, short_side=pre.get("short_side"),
                    flip=r.flip, mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                    min_input=tuple(model.min_input), action_bias=r.action_bias)
    clips = SegmentClips(ds.train, spec, seed=opts.seed, clips_per_video=r.clips_per_video)
    steps_per_epoch = math.ceil(len(clips) / r.batch_size)
    seg_extra: dict[str, Any] = {}
    if r.joint:  # module docstring: two parameter groups, the segmentation loss's target
        model.set_segmenter_trainable(True, bn_stats=r.segmenter_bn == "update")
        seg_target = segmentation_target_name(opts.segmenter, seg_classes, ds.classes)
        weights, source = segmenter_class_weights(opts.segmenter)
        seg_weight = class_weight_vector(len(seg_classes), weights)
        opt = torch.optim.Adam([
            {"params": list(model.head.parameters()), "weight_decay": r.weight_decay},
            {"params": list(model.segmenter.parameters()), "lr": r.lr * r.segmenter_lr_mult,
             "weight_decay": 0.0}], lr=r.lr)
        seg_extra = {"segmentation_loss": {"target": seg_target, "class_weights": weights,
                                           "class_weights_from": source}}
        log(f"joint fine-tune: segmentation loss on the {seg_target} target, class weights "
            f"{weights} ({source})")
    else:
        opt = torch.optim.Adam(model.head.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: r.lr_decay ** (step // steps_per_epoch))
    val = ds.val if opts.val_videos <= 0 else ds.val[: opts.val_videos]
    keys = ("accuracy_gt_masks", "loss", "frames") + (("foreground_iou_clips",) if r.joint else ())
    frozen_features: dict | None = None if r.joint else {}  # the segmenter's, every epoch the same

    def validate(m) -> dict[str, Any]:
        res = head_accuracy(m, val, pre, device, r.batch_size, segmentation=r.joint,
                            feature_cache=frozen_features)
        return {k: res[k] for k in keys}

    last = Path(opts.run_dir) / "last.ckpt"
    if opts.resume:  # checked before any work
        if not last.is_file():
            raise InputError(last, "nothing to resume: no last.ckpt in the run folder")
        ckpt = read_checkpoint(last)
        check_checkpoint_fits(last, ckpt, expect_model="sep3d+head", expect_classes=seg_classes)
        check_actions(last, ckpt["config"].get("action_names"), actions)
        if ckpt["config"] != model.model_config:
            raise InputError(last, "checkpoint config differs from this run's (segmenter, crop, "
                                   "hidden); resume with the same settings")
        settings, _ = checkpoint_settings(ckpt)
        recipe = settings.get("recipe") if settings is not None else None
        was = recipe.get("joint", False) if isinstance(recipe, Mapping) else False
        if bool(was) != r.joint:
            raise InputError(last, f"the run was trained {'with' if was else 'without'} --joint; "
                                   "resume with the same settings")
    if r.joint and val:  # the starting point, to see how far the segmentation moves
        model.to(device)
        seg_extra["val_before_training"] = validate(model)
        log(f"before training: {seg_extra['val_before_training']}")
    settings = TrainSettings(
        epochs=r.epochs, max_steps=opts.max_steps, seed=opts.seed, amp=opts.amp,
        grad_clip=r.grad_clip, monitor="accuracy_gt_masks" if val else None, quiet=opts.quiet,
        extra={"task": "sep3d-head", "data": str(Path(opts.data).resolve()), "layout": ds.layout,
               "segmenter": model.segmenter_checkpoint, "action_names": actions,
               "device": str(device), "val_videos": [v.video_id for v in val], "split": opts.split,
               "recipe": asdict(r), **seg_extra},
    )
    trainer = Trainer(model, seg_classes, opt, opts.run_dir, settings, device, scheduler=sched)
    if opts.resume:
        trainer.resume(last)

    def batches(epoch: int):
        clips.set_epoch(epoch)
        order = clips.order(epoch)
        for i in range(0, len(order), r.batch_size):
            b = collate([clips[int(k)] for k in order[i : i + r.batch_size]])
            boxes, target = frame_targets(b["y"].numpy(), len(actions))
            batch = {"x": b["x"], "boxes": torch.from_numpy(boxes), "target": torch.from_numpy(target)}
            if r.joint:
                batch["seg_target"] = torch.from_numpy(segmentation_target(b["y"].numpy(), seg_target))
            yield batch

    if r.joint:
        def loss_step(m, batch):
            return joint_loss(m, batch, seg_weight, r.seg_loss_weight)
    else:
        loss_step = head_loss
    history = trainer.fit(batches, loss_step, validate if val else None, steps_per_epoch=steps_per_epoch)
    return {"run_dir": str(opts.run_dir), "model": "sep3d+head", "action_names": actions,
            "layout": ds.layout, "epochs": trainer.epoch, "steps": trainer.step,
            "best": trainer.best, "history": history}
