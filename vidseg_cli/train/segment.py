"""Training 3DFCN and Sep3D for per-pixel action segmentation (`vidseg train segment`).

Recipes (`RECIPES`): the papers' settings are the defaults for the full-size models, and a
CPU-sized synthetic recipe trains the same architectures, narrowed, on `vidseg synth` data
in minutes (docs/segment3d.md):

- 3DFCN "paper" (3DFCN §4.2): weighted multinomial logistic loss after a softmax, weight 0.1
  for background and 10 for every action class; SGD, momentum 0.99, weight decay 5e-4,
  fixed learning rate 1e-6 (biases 2e-6), batch 1 (a whole video: the loss is the average
  over its prediction map); random mirroring and random spatial crops (the crop side, 224,
  is ours: the paper gives none); fine-tuned from C3D (`--init c3d.pickle`); inputs as the
  C3D port takes them (RGB 0..255, nothing subtracted). 160,000 iterations, "roughly 240
  epochs".
- Sep3D "paper" (Sep3D §4): Adam, learning rate 1e-4 decayed by 0.95 every epoch, 100
  epochs, 384-pixel spatial crops of 8-frame clips, random scaling by [0.5, 2] and random
  horizontal flips; the encoder from torchvision's R(2+1)D-18 Kinetics weights
  (`--init r2plus1d_18-91a641e6.pth`), inputs normalised with Kinetics' mean/std; a binary
  foreground target (the paper segments the actor/object, then classifies). Batch 4 is ours.
- "synthetic" (ours, for CPUs): width 1/16 (3DFCN; its fc6 is most of its weights, and 1/8
  would make a 5 MB checkpoint) or 1/8 (Sep3D), Adam at 1e-3 (3DFCN) / 2e-3 (Sep3D) decayed 0.95
  per epoch, a foreground target with class weights 1 / 2 (3DFCN) or 1 / 1 (Sep3D: 5 and 2
  made its masks too fat), Sep3D
  clips of 16 frames (a still actor is background: the clip must show it still), 3DFCN
  clips of 8 x 96 x 96 labelled pixels inside half of what a class-map cell sees (8 x 64 x
  64) of mirrored, unlabelled context (`HALF_WINDOW`: every labelled pixel lies between
  class-map cell centres; segment-3d
  mirrors the video the same way), clips centred on an action 70 % of the time
  (`action_bias`), batches of at least 2 (PyTorch's CPU conv3d takes its fast oneDNN path
  only for batches > 1 or large inputs, docs/segment3d.md); 3DFCN sees the
  128x96 synthetic frames resized 2x (short side 192: its class map has a stride of 8
  pixels and each cell sees 128, so 96-pixel frames would be mostly mirrored context).

The loss is `weighted_cross_entropy`: PyTorch's weighted mean (sum of w_y * -log p_y over
labelled pixels divided by the sum of their w_y), ignoring padding (label 255).
Preprocessing (mean/std, short side, clip length) is stored in every checkpoint
(`preprocess`), and `segment-3d` applies exactly the same. The validation metric of every
epoch is the foreground IoU (3DFCN §4.1, metrics/masks.py) of `segment-3d`'s own inference
(infer/segmenter.py) on the dataset's validation videos.

Under torchrun (train/distributed.py) every rank takes `order[i:i+B][rank::world]` of
each batch of the (seed, epoch) order; the weighted loss is normalised by the weights of
the whole global batch, so the averaged gradient is one process's; a last batch of fewer
clips than ranks is skipped by all; validation videos are split over the ranks and their
counts gathered. `sync_bn` makes BatchNorm (Sep3D) use the global batch's statistics
(train/sync_bn.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli.errors import InputError
from vidseg_cli.models.preprocess import (
    C3D_PORT_PREPROCESS,
    CENTRED_PREPROCESS,
    KINETICS_PREPROCESS,
    Preprocess,
)

MODEL_NAMES = ("3dfcn-8s", "3dfcn-32s", "sep3d")
RECIPE_NAMES = ("paper", "synthetic")
# Half of what a 3DFCN class-map cell sees (16 x 128 x 128, models/fcn3d.py WINDOW_CENTER)
# each side: the first cell's centre, at (7.5, 63.5, 63.5), then lies half a frame/pixel
# before the first real one, so every labelled pixel lies between cell centres (FCN's conv1
# pad of 100 serves the same purpose in 2D).
HALF_WINDOW = (8, 64, 64)


@dataclass
class Recipe:
    """Every setting of a training run besides the data and the run folder."""

    name: str  # "paper" or "synthetic"
    width: float = 1.0  # model channel multiplier (1.0: the paper's network)
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 1e-6  # base learning rate
    momentum: float = 0.99  # SGD momentum
    weight_decay: float = 5e-4  # L2 on every parameter
    bias_lr_mult: float = 1.0  # biases learn this many times faster (3DFCN: 2)
    lr_decay: float = 1.0  # learning rate multiplied by this after every epoch
    batch_size: int = 1  # clips per step
    epochs: int = 240  # passes over the training videos
    clip_len: int = 0  # frames per clip; 0 = the whole video
    crop: int | None = None  # square spatial crop side after scaling; None = the whole frame
    short_side: int | None = None  # resize frames so their shorter side is this (train and test)
    scale_jitter: tuple[float, float] = (1.0, 1.0)  # random extra scale factor range
    flip: bool = True  # random horizontal mirror
    class_weights: tuple[float, float] | None = None  # (background, every action); None = equal
    target: str = "classes"  # "classes" (background + actions) or "foreground"
    mean: list[float] = field(default_factory=lambda: list(C3D_PORT_PREPROCESS["mean"]))
    std: list[float] = field(default_factory=lambda: list(C3D_PORT_PREPROCESS["std"]))
    clips_per_video: int = 1  # items per training video per epoch
    action_bias: float = 0.0  # probability of centring a clip on a labelled pixel
    grad_clip: float | None = None  # gradient norm clip
    # 3DFCN: unlabelled context (frames, rows, cols) mirrored around each clip and each
    # video at inference (infer/segmenter.py), so every pixel is a class-map window centre.
    context: tuple[int, int, int] = (0, 0, 0)
    model_config: dict[str, Any] = field(default_factory=dict)  # other model arguments

    def preprocess(self, model: str) -> Preprocess:
        """What the training clips are prepared with, the checkpoint records and segment-3d
        applies."""
        clip = self.clip_len if model == "sep3d" else 0
        context = None if model == "sep3d" else tuple(int(c) for c in self.context)
        return Preprocess(tuple(self.mean), tuple(self.std), self.short_side, clip, context)


def _fcn_paper() -> Recipe:
    return Recipe("paper", width=1.0, optimizer="sgd", lr=1e-6, momentum=0.99, weight_decay=5e-4,
                  bias_lr_mult=2.0, batch_size=1, epochs=240, clip_len=0, crop=224,
                  class_weights=(0.1, 10.0), target="classes")


def _sep3d_paper() -> Recipe:
    return Recipe("paper", width=1.0, optimizer="adam", lr=1e-4, momentum=0.0, weight_decay=0.0,
                  lr_decay=0.95, batch_size=4, epochs=100, clip_len=8, crop=384,
                  scale_jitter=(0.5, 2.0), target="foreground",
                  mean=list(KINETICS_PREPROCESS["mean"]), std=list(KINETICS_PREPROCESS["std"]),
                  model_config={"crop_size": 384})


def _fcn_synthetic() -> Recipe:
    # Half of what a cell sees (HALF_WINDOW) of mirrored context around every 8 x 96 x 96
    # labelled clip: without it only the centre (crop - 128 px) of a crop has class-map
    # cells of its own and the rest copies the border cells (docs/segment3d.md, learning
    # check). 16 epochs beat 8 (test fg IoU 0.30 vs 0.25), and 20 (which channels-last
    # convolutions fit in the 10 minutes) beat 16 (0.32 vs 0.30).
    return Recipe("synthetic", width=0.0625, optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=0.0,
                  lr_decay=0.95, batch_size=2, epochs=20, clip_len=8, crop=96, short_side=192,
                  scale_jitter=(0.9, 1.1), class_weights=(1.0, 2.0), target="foreground",
                  mean=list(CENTRED_PREPROCESS["mean"]), std=list(CENTRED_PREPROCESS["std"]), clips_per_video=2,
                  action_bias=0.7, grad_clip=5.0, context=HALF_WINDOW)


def _sep3d_synthetic() -> Recipe:
    # 16-frame clips (not 8) so a still actor, which is background, is seen still for long
    # enough; equal class weights (5, then 2, for the action made masks too fat: test fg
    # IoU 0.45, 0.547, 0.609 with 1 / 1; docs/segment3d.md, learning check).
    return Recipe("synthetic", width=0.125, optimizer="adam", lr=2e-3, momentum=0.0, weight_decay=0.0,
                  lr_decay=0.95, batch_size=4, epochs=26, clip_len=16, crop=96, short_side=None,
                  scale_jitter=(0.8, 1.25), class_weights=(1.0, 1.0), target="foreground",
                  mean=list(CENTRED_PREPROCESS["mean"]), std=list(CENTRED_PREPROCESS["std"]), clips_per_video=4,
                  action_bias=0.7, grad_clip=5.0, model_config={"crop_size": 96})


def get_recipe(model: str, name: str) -> Recipe:
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model '{model}' (known: {', '.join(MODEL_NAMES)})")
    if name not in RECIPE_NAMES:
        raise ValueError(f"unknown recipe '{name}' (known: {', '.join(RECIPE_NAMES)})")
    fcn = model.startswith("3dfcn")
    if name == "paper":
        return _fcn_paper() if fcn else _sep3d_paper()
    return _fcn_synthetic() if fcn else _sep3d_synthetic()


# -- loss ----------------------------------------------------------------------------------
def class_weight_vector(num_classes: int, weights: tuple[float, float] | None):
    """(background, action) -> a C-vector (3DFCN §4.2: 0.1 and 10), or None."""
    import torch

    if weights is None:
        return None
    w = torch.full((num_classes,), float(weights[1]))
    w[0] = float(weights[0])
    return w


def weighted_cross_entropy(logits, target, weight=None):
    """Weighted multinomial logistic loss after a softmax (3DFCN §4.2), averaged over the
    labelled pixels of the prediction map (weighted mean); label 255 is ignored.
    logits: B x C x T x H x W; target: B x T x H x W int64."""
    import torch.nn.functional as F

    from vidseg_cli.datasets.segment_data import IGNORE
    from vidseg_cli.train import distributed

    w = weight.to(logits.device) if weight is not None else None
    if distributed.current().active:
        # this rank's sum over the global batch's sum of weights (distributed.share); the
        # ranks call the all-reduce even with nothing labelled
        total = F.cross_entropy(logits.float(), target, weight=w, ignore_index=IGNORE, reduction="sum")
        labelled = target != IGNORE
        wsum = (w[target[labelled]].sum() if w is not None else labelled.sum()).float()
        return distributed.share(total + logits.sum() * 0.0, wsum)
    if not bool((target != IGNORE).any()):
        return logits.sum() * 0.0  # nothing labelled in this batch
    return F.cross_entropy(logits.float(), target, weight=w, ignore_index=IGNORE)


# -- the run ---------------------------------------------------------------------------------
@dataclass
class SegmentTrainOptions:
    model: str  # 3dfcn-8s, 3dfcn-32s or sep3d
    data: str  # dataset folder (synthetic, J-HMDB or DAVIS layout)
    run_dir: str  # checkpoints, log.jsonl, config.json
    recipe: Recipe  # every training setting (get_recipe + overrides)
    init: str | None = None  # public weights (C3D port / torchvision r2plus1d_18) or our checkpoint
    max_steps: int | None = None  # stop after this many steps
    resume: bool = False  # continue from run_dir/last.ckpt
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    val_videos: int = 4  # validation videos per epoch (0 = all)
    split: int = 1  # J-HMDB split
    max_memory: int = 1 << 30  # validation inference: 3DFCN trunk memory per pass
    quiet: bool = False
    sync_bn: bool = False  # several ranks: BatchNorm statistics of the global batch


def _optimizer(model, r: Recipe):
    import torch

    decay, bias = [], []
    for name, p in model.named_parameters():
        (bias if name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "lr": r.lr}, {"params": bias, "lr": r.lr * r.bias_lr_mult}]
    if r.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
    if r.optimizer == "adam":
        return torch.optim.Adam(groups, lr=r.lr, weight_decay=r.weight_decay)
    raise ValueError(f"unknown optimizer '{r.optimizer}' (known: sgd, adam)")


def _init_weights(model, path: str, classes: list[str]) -> str:
    """--init: public weights by layout (checkpoint.load_public_weights) or one of ours."""
    from vidseg_cli.models.checkpoint.format import check_checkpoint_fits
    from vidseg_cli.models.checkpoint.layouts import load_public_weights
    from vidseg_cli.models.checkpoint.weights import (
        is_checkpoint,
        load_state_dict_checked,
        read_weights,
    )

    obj = read_weights(path)
    if is_checkpoint(obj):
        check_checkpoint_fits(path, obj, expect_model=model.model_name, expect_classes=classes)
        if obj.get("config") != model.model_config:
            raise InputError(path, f"checkpoint config {obj.get('config')} differs from the model's "
                                   f"{model.model_config} (width, crop size ...)")
        load_state_dict_checked(model, obj["state_dict"], path)
        return "vidseg checkpoint: every key loaded"
    return load_public_weights(obj, model, path=path).summary()


def build_model(model_name: str, classes: list[str], recipe: Recipe):
    from vidseg_cli.models import MODELS

    cfg = {"num_classes": len(classes), "width": recipe.width, **recipe.model_config}
    return MODELS.build(model_name, **cfg)


def make_validator(model_name: str, videos, classes: list[str], preprocess: dict, device,
                   max_memory: int | None):
    """validate(model) -> {"foreground_iou", "localization_iou", "mean_iou_per_video"} by
    segment-3d's inference on `videos` and metrics/masks.py."""
    from vidseg_cli.infer.segmenter import Segmenter
    from vidseg_cli.metrics import masks as mm
    from vidseg_cli.train import distributed

    def validate(model) -> dict[str, float]:
        seg = Segmenter(model, classes, preprocess, model_name=model_name, device=device, max_memory=max_memory)

        def count(v):
            frames, labels = v.load()
            pred = seg.predict(frames, v.source).argmax(axis=1).astype(np.uint8)  # T x H x W
            return mm.video_counts(labels, pred)

        # each rank scores its share of the videos; the counts of all, in order, on every rank
        counts = dict(zip([v.video_id for v in videos], distributed.map_sharded(count, videos)))
        acc = mm.accumulate(counts, class_aware=len(classes) > 2)
        out = {"foreground_iou": acc["foreground_iou"], "mean_iou_per_video": acc["mean_iou_per_video"]}
        if acc["localization_iou"] is not None:
            out["localization_iou"] = acc["localization_iou"]
        return out

    return validate


def train_segment(opts: SegmentTrainOptions, log=print) -> dict[str, Any]:
    """Run one training (module docstring); returns a summary with the epoch history."""
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
    from vidseg_cli.train.engine import Trainer, TrainSettings

    r = opts.recipe
    if r.clip_len <= 0 and r.batch_size > 1 and r.crop is None:
        raise ValueError("whole-video clips (clip length 0) of different videos cannot share a "
                         "batch: use --batch-size 1 or a --clip-len")
    distributed.check_batch_size(r.batch_size)
    device = distributed.device(opts.device)
    ds = open_segment_dataset(opts.data, target=r.target, split=opts.split)
    if not ds.train:
        raise InputError(opts.data, "no training videos")
    for w in ds.warnings:
        log(f"warning: {w}")
    seed_everything(opts.seed)
    model = build_model(opts.model, ds.classes, r)
    if opts.sync_bn and not sync_bn.has_batchnorm(model):
        raise ValueError(f"--sync-bn: {opts.model} has no BatchNorm layers (only sep3d has)")
    pre = r.preprocess(opts.model)
    model.preprocess = pre.record()  # saved into every checkpoint
    init_note = None
    if opts.init and not opts.resume:
        init_note = _init_weights(model, opts.init, ds.classes)
        log(f"init from {opts.init}: {init_note}")
    if opts.sync_bn and distributed.current().active:  # before the optimizer takes the parameters
        model = sync_bn.convert(model, device)  # same names: checkpoints load into plain BatchNorm
    spec = ClipSpec(clip_len=r.clip_len, crop=r.crop, preprocess=pre,
                    scale_jitter=tuple(r.scale_jitter), flip=r.flip,
                    min_input=tuple(model.min_input), action_bias=r.action_bias)
    clips = SegmentClips(ds.train, spec, seed=opts.seed, clips_per_video=r.clips_per_video)
    steps_per_epoch = distributed.batches_per_epoch(len(clips), r.batch_size)  # one process: ceil
    opt = _optimizer(model, r)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: r.lr_decay ** (step // steps_per_epoch))  # per-epoch exponential decay
    val = ds.val if opts.val_videos <= 0 else ds.val[: opts.val_videos]
    validate = make_validator(opts.model, val, ds.classes, model.preprocess, device, opts.max_memory) if val else None
    weight = class_weight_vector(len(ds.classes), r.class_weights)
    settings = TrainSettings(
        epochs=r.epochs, max_steps=opts.max_steps, seed=opts.seed, amp=opts.amp,
        grad_clip=r.grad_clip, monitor="foreground_iou" if validate else None, quiet=opts.quiet,
        extra={"task": "segment", "data": str(Path(opts.data).resolve()), "layout": ds.layout,
               "init": opts.init, "init_note": init_note, "device": str(device),
               "val_videos": [v.video_id for v in val], "split": opts.split,
               "recipe": _jsonable(asdict(r)), **({"sync_bn": True} if opts.sync_bn else {})},
    )
    trainer = Trainer(model, ds.classes, opt, opts.run_dir, settings, device, scheduler=sched,
                      sharded=True)
    if opts.resume:
        last = Path(opts.run_dir) / "last.ckpt"
        if not last.is_file():
            raise InputError(last, "nothing to resume: no last.ckpt in the run folder")
        ckpt = read_checkpoint(last)
        check_checkpoint_fits(last, ckpt, expect_model=opts.model, expect_classes=ds.classes)
        if ckpt.get("config") != model.model_config:
            raise InputError(last, f"checkpoint config {ckpt.get('config')} differs from this run's "
                                   f"{model.model_config}; resume with the same settings")
        trainer.resume(last)

    def batches(epoch: int):
        clips.set_epoch(epoch)
        order = clips.order(epoch)
        for i in range(0, len(order), r.batch_size):
            mine = distributed.shard(order[i : i + r.batch_size])
            if mine is not None:  # None: a ragged last batch smaller than the ranks
                yield collate([clips[int(k)] for k in mine])

    def loss_step(m, batch):
        return weighted_cross_entropy(m(batch["x"]), batch["y"], weight)  # x: B x 3 x T x H x W

    history = trainer.fit(batches, loss_step, validate, steps_per_epoch=steps_per_epoch)
    return {"run_dir": str(opts.run_dir), "model": opts.model, "classes": ds.classes,
            "layout": ds.layout, "epochs": trainer.epoch, "steps": trainer.step,
            "best": trainer.best, "history": history}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def with_overrides(recipe: Any, **changes: Any) -> Any:
    """The recipe (a dataclass: Recipe, HeadRecipe) with every non-None change applied."""
    return replace(recipe, **{k: v for k, v in changes.items() if v is not None})
