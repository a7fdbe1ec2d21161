"""The losses of `train sep3d-head` (train/segment_head.py): per-frame targets from the
ground-truth masks, the head's softmax cross-entropy (Sep3D §4), the joint fine-tune's two
terms, and the segmentation loss's target and class weights."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vidseg_cli.errors import InputError

IGNORE_FRAME = -100  # cross_entropy's ignore_index: a frame without an actor


# -- targets -------------------------------------------------------------------------------
def head_frame_targets(labels: np.ndarray, num_actions: int) -> tuple[np.ndarray, np.ndarray]:
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


def head_cross_entropy(model, logits, target):
    """The mean softmax cross-entropy over the frames with an actor (Sep3D §4); 0 when the
    batch has none. Under torchrun: this rank's share of the mean over the frames of the
    whole global batch (train/distributed.py), every rank joining the all-reduce."""
    import torch.nn.functional as F

    from vidseg_cli.train import distributed

    zero = model.head.fc.bias.sum() * 0.0  # no actor in this batch: a zero on the graph
    if distributed.current().active:
        total = F.cross_entropy(logits.float(), target, reduction="sum") if target.numel() else zero
        return distributed.share(total + zero, target.numel())
    if target.numel() == 0:
        return zero
    return F.cross_entropy(logits.float(), target)


def head_loss(model, batch):
    """Softmax cross-entropy over the frames with an actor (Sep3D §4)."""
    logits, target = head_logits(model, batch["x"], batch["boxes"], batch["target"])
    return head_cross_entropy(model, logits, target)


def joint_loss_terms(model, batch, seg_weight=None):
    """The two terms of the joint fine-tune (module docstring) from one forward pass of the
    segmenter with gradients over every clip of the batch: (head cross-entropy over the
    frames with an actor, `weighted_cross_entropy` of the per-pixel logits against
    batch["seg_target"] with class weights `seg_weight`)."""
    from vidseg_cli.train.segment import weighted_cross_entropy

    x = batch["x"]
    seg_logits, feats = model.segmenter.forward_with_features(x)  # B x K x T x H x W, features
    seg = weighted_cross_entropy(seg_logits, batch["seg_target"], seg_weight)
    logits, target = head_logits_from_features(model, feats, batch["boxes"], batch["target"],
                                               tuple(x.shape[-2:]))
    return head_cross_entropy(model, logits, target), seg


def joint_loss(model, batch, seg_weight=None, seg_loss_weight: float = 1.0):
    """Head cross-entropy + seg_loss_weight * segmentation cross-entropy."""
    head, seg = joint_loss_terms(model, batch, seg_weight)
    return head + seg_loss_weight * seg


# The synthetic Sep3D recipe's (train/segment.py; a test keeps them equal): the shipped
# sample_data/weights/sep3d_synth.ckpt, a best.ckpt without training state, was trained so.
DEFAULT_SEG_CLASS_WEIGHTS = (1.0, 1.0)


def segmenter_class_weights(path: str | os.PathLike) -> tuple[tuple[float, float] | None, str]:
    """The (background, action) class weights the segmenter checkpoint at `path` was
    trained with, and where they were found: its `training` settings (the header the
    Trainer writes into every checkpoint), else its training state (a `train segment`
    last.ckpt without that header), else the `config.json` beside it when that run's
    model, config and classes are the checkpoint's (a best.ckpt without the header, in its
    run folder), else DEFAULT_SEG_CLASS_WEIGHTS. None = unweighted (recorded as such)."""
    import json

    from vidseg_cli.models.checkpoint.format import read_checkpoint
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
