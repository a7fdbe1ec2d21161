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

Under torchrun (train/distributed.py) every rank takes `order[i:i+B][rank::world]` of
each batch of the (seed, epoch) order; the head's cross-entropy is this rank's share of
the mean over the frames with an actor of the whole global batch (and the joint
segmentation loss the weighted share of `train segment`); validation videos are split
over the ranks and their counts gathered. `sync_bn` (with `joint` and BatchNorm
statistics updating: a frozen segmenter normalises with its running statistics) gives
the segmenter's BatchNorm the global batch's statistics (train/sync_bn.py).

The checkpoint is one self-contained file: model "sep3d+head" (`Sep3DWithHead`), holding
the segmenter's weights and config, the head's weights, `action_names` (the dataset's
classes without background: J-HMDB's 21 from its folders, the synthetic set's motions),
the segmenter checkpoint it started from (path and SHA-256) and the segmenter's
preprocessing, so `segment-3d --model sep3d --weights RUN/last.ckpt` runs both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidseg_cli.errors import InputError
from vidseg_cli.models.preprocess import Preprocess
from vidseg_cli.train.head_loss import (
    head_frame_targets,
    head_loss,
    joint_loss,
    segmentation_target,
    segmentation_target_name,
    segmenter_class_weights,
)
from vidseg_cli.train.head_metric import head_counts, summarize_counts


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
    sync_bn: bool = False  # several ranks, joint: the segmenter's BatchNorm over the global batch


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
    from vidseg_cli.models.checkpoint.format import build_from_checkpoint
    from vidseg_cli.models.checkpoint.weights import load_state_dict_checked

    seg, ckpt = build_from_checkpoint(segmenter_path, expect_model="sep3d")
    source = {"path": str(Path(segmenter_path).resolve()), "sha256": file_sha256(segmenter_path)}
    model = MODELS.build("sep3d+head", segmenter=ckpt["config"], action_names=list(action_names),
                         crop=recipe.crop, hidden=recipe.hidden, segmenter_checkpoint=source)
    load_state_dict_checked(model.segmenter, seg.state_dict(), segmenter_path)
    given = ckpt.get("preprocess") if isinstance(ckpt.get("preprocess"), dict) else {}
    model.preprocess = Preprocess.from_record(given, "sep3d").record()
    return model.train(), list(ckpt["classes"])

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
    from vidseg_cli.models.checkpoint.format import check_checkpoint_fits, read_checkpoint
    from vidseg_cli.runtime import seed_everything
    from vidseg_cli.train import distributed, sync_bn
    from vidseg_cli.train.engine import Trainer, TrainSettings, checkpoint_settings
    from vidseg_cli.train.segment import class_weight_vector

    r = opts.recipe
    if r.joint and not r.segmenter_lr_mult > 0:
        raise ValueError(f"segmenter_lr_mult must be > 0, got {r.segmenter_lr_mult}")
    if r.joint and not r.seg_loss_weight >= 0:
        raise ValueError(f"seg_loss_weight must be >= 0, got {r.seg_loss_weight}")
    if r.segmenter_bn not in ("update", "frozen"):
        raise ValueError(f"segmenter_bn must be 'update' or 'frozen', got {r.segmenter_bn!r}")
    if opts.sync_bn and not (r.joint and r.segmenter_bn == "update"):
        raise ValueError("--sync-bn: the segmenter's BatchNorm normalises with batch statistics only "
                         "with --joint and --segmenter-bn update (a frozen one uses its running statistics)")
    distributed.check_batch_size(r.batch_size)
    device = distributed.device(opts.device)
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
    prep = Preprocess.from_record(pre, "sep3d")
    spec = ClipSpec(clip_len=prep.clip_len or 8, crop=None, preprocess=prep, flip=r.flip,
                    min_input=tuple(model.min_input), action_bias=r.action_bias)
    clips = SegmentClips(ds.train, spec, seed=opts.seed, clips_per_video=r.clips_per_video)
    steps_per_epoch = distributed.batches_per_epoch(len(clips), r.batch_size)  # one process: ceil
    seg_extra: dict[str, Any] = {}
    if r.joint:  # module docstring: two parameter groups, the segmentation loss's target
        model.set_segmenter_trainable(True, bn_stats=r.segmenter_bn == "update")
        if opts.sync_bn and distributed.current().active:  # before the optimizer takes the parameters
            model.segmenter = sync_bn.convert(model.segmenter, device)  # names kept: loads in one process
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
        # each rank counts its share of the videos; the counts of all on every rank
        counts = distributed.map_sharded(lambda v: head_counts(
            m, [v], pre, device, r.batch_size, segmentation=r.joint, feature_cache=frozen_features), val)
        res = summarize_counts(counts, m.action_names, segmentation=r.joint)
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
               "recipe": asdict(r), **seg_extra, **({"sync_bn": True} if opts.sync_bn else {})},
    )
    trainer = Trainer(model, seg_classes, opt, opts.run_dir, settings, device, scheduler=sched,
                      sharded=True)
    if opts.resume:
        trainer.resume(last)

    def batches(epoch: int):
        clips.set_epoch(epoch)
        order = clips.order(epoch)
        for i in range(0, len(order), r.batch_size):
            mine = distributed.shard(order[i : i + r.batch_size])
            if mine is None:  # a ragged last batch smaller than the ranks
                continue
            b = collate([clips[int(k)] for k in mine])
            boxes, target = head_frame_targets(b["y"].numpy(), len(actions))
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
