"""S-CNN (Shou et al. 2016): its segment network and how each of its three stages trains.

The network (`SCNNNet` in models/scnn.py, registered as model "scnn") is C3D (models/c3d.py, S-CNN §3.1)
with what a stage needs to run on its own recorded in its checkpoint config: the stage
("proposal" | "classification" | "localization"), the input preparation (frame size,
crop, pixel normalization), the window lengths and overlap, and for the classification
and localization networks the class-specific window-length frequencies of §3.3. It keeps
C3D's module names, so the C3D Sports-1M port loads into a full-size one by key
(`load_public_weights`; fc8 stays fresh when its class count differs). A crop other than
112 x 112 resizes fc6 to the pool5 map that crop gives (CPU-sized networks).

Training (`train_scnn`), S-CNN §3.2:
- proposal: 2-way softmax on all positives (label 1) and N_T + N_U background windows;
  SGD lr 1e-4 (fc8 1e-2), momentum 0.9, weight decay 5e-4, lr / 10 every 10K iterations.
- classification: K+1-way softmax, background sampled to (N_T + N_U) / K; lr / 2 every 10K.
- localization: the overlap loss of Eq. (1)-(3) (train/losses.py), alpha = 0.25,
  lambda = 1, initialized from the classification network (`init`), lr as classification.
Everything runs through train/engine.py's Trainer.

Under torchrun (train/distributed.py) rank 0 decodes the frame cache first and the other
ranks then read it; every rank draws the epoch's segments and the augmentation of every
clip of a global batch from (seed, epoch), and builds and trains on its share
`batch[rank::world]`; the losses (Eq. 1 and 2, means over the batch) are the global
batch's; the validation segments are split over the ranks and their predictions
gathered; rank 0 alone writes the run and summary.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidseg_cli.core.fs import write_text
from vidseg_cli.datasets.scnn_data import FrameCache, SCNNData, dataset_paths, load_scnn_data
from vidseg_cli.errors import InputError
from vidseg_cli.models.preprocess import WindowSpec
from vidseg_cli.models.registry import MODELS
from vidseg_cli.models.scnn import STAGES, SCNNNet, load_stage_network  # noqa: F401  (re-exported)
from vidseg_cli.stages.windows import SCNN_LENGTHS, SCNN_OVERLAP
from vidseg_cli.train import distributed
from vidseg_cli.train.losses import SCNN_ALPHA, SCNN_LAMBDA, overlap_loss

# -- training -----------------------------------------------------------------------------
# Settings per recipe; an option given on the command line wins.
RECIPES: dict[str, dict[str, Any]] = {
    # S-CNN §3.2 / §4.2 with C3D at full size (initialize from the Sports-1M port with --init).
    "paper": dict(width=1.0, frame_size=(171, 128), crop_size=(112, 112), pixel_mean=0.0,
                  pixel_scale=1.0, lr=1e-4, fc8_lr=1e-2, lr_step=10000, iterations=30000,
                  batch_size=16, dropout=0.5, optimizer="sgd"),
    # A CPU-sized network trained from scratch on `vidseg synth` sets (docs/scnn.md): a
    # tenth of the width, whole 64 x 48 frames, normalized pixels, Adam at a learning rate
    # 10x the paper's (plain SGD from scratch is far slower to start, docs/scnn.md).
    "synthetic": dict(width=0.1, frame_size=(64, 48), crop_size=(48, 64), pixel_mean=110.0,
                      pixel_scale=1 / 60, lr=1e-3, fc8_lr=1e-3, lr_step=1000, iterations=1000,
                      batch_size=16, dropout=0.3, optimizer="adam"),
}
LR_GAMMA = {"proposal": 0.1, "classification": 0.5, "localization": 0.5}  # S-CNN §3.2


@dataclass
class SCNNTrainOptions:
    stage: str  # proposal | classification | localization
    data: str  # synthetic set folder, or a folder with annotations (THUMOS14 txt / gt.json)
    out: str  # run folder
    gt: str | None = None  # ground truth, if not found in `data`
    videos: str | None = None  # videos folder (default data/videos)
    subset: str | None = "training"
    trimmed: str | None = None  # trimmed clips, a folder per class
    recipe: str = "paper"
    init: str | None = None  # classification checkpoint (localization) or C3D Sports-1M port
    width: float | None = None
    frame_size: tuple[int, int] | None = None
    crop_size: tuple[int, int] | None = None
    dropout: float | None = None
    iterations: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None  # sgd (S-CNN §3.2) | adam
    lr: float | None = None
    fc8_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int | None = None  # iterations between lr drops
    lr_gamma: float | None = None  # default: 0.1 proposal, 0.5 otherwise
    alpha: float = SCNN_ALPHA
    lam: float = SCNN_LAMBDA
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    resume: bool = False
    cache: str | None = None  # frame cache folder (default RUN_DIR/frames_cache)
    threads: int | None = None
    quiet: bool = False
    resolved: dict[str, Any] = field(default_factory=dict)

    def setting(self, name: str) -> Any:
        v = getattr(self, name, None)
        return RECIPES[self.recipe][name] if v is None else v


def _init_weights(model: SCNNNet, opts: SCNNTrainOptions, classes: list[str]) -> str:
    """Load --init: an S-CNN classification checkpoint (for localization) or public C3D."""
    from vidseg_cli.models.checkpoint.layouts import load_public_weights
    from vidseg_cli.models.checkpoint.weights import (
        is_checkpoint,
        load_state_dict_checked,
        read_weights,
    )

    obj = read_weights(opts.init)
    if is_checkpoint(obj):
        if opts.stage != "localization":
            raise InputError(opts.init, "an S-CNN checkpoint initializes the localization network "
                                        "only (S-CNN §3.2); use the C3D Sports-1M port for the others")
        load_stage_network(opts.init, ["classification"], expect_classes=classes)
        load_state_dict_checked(model, obj["state_dict"], opts.init)
        return "S-CNN classification network"
    rep = load_public_weights(opts.init, model)
    return f"{rep.layout}" + (f" ({'; '.join(f'{k}: {v}' for k, v in rep.notes.items())})" if rep.notes else "")


def _arch_from_init(opts: SCNNTrainOptions) -> dict[str, Any] | None:
    """The localization network takes the classification network's architecture."""
    if opts.stage != "localization" or not opts.init:
        return None
    from vidseg_cli.models.checkpoint.weights import is_checkpoint, read_weights

    obj = read_weights(opts.init)
    if not is_checkpoint(obj) or obj.get("model") != "scnn":
        return None
    cfg = obj["config"]
    return {k: cfg[k] for k in ("width", "pooling", "dropout", "frame_size", "crop_size",
                                "pixel_mean", "pixel_scale", "window_lengths", "window_overlap")
            if k in cfg}


def evaluate_windows(model: SCNNNet, data: SCNNData, segs, spec: WindowSpec, device, batch: int = 64,
                     stage: str = "classification") -> dict[str, float]:
    """Accuracy (and per-class mean accuracy) of a network on labelled segments; under
    torchrun each rank predicts its share of the batches of segments, gathered."""

    def predict(i: int) -> tuple[np.ndarray, np.ndarray]:
        clips, labels, _ = data.batch(segs[i:i + batch], spec)
        if stage == "proposal":
            labels = (labels > 0).astype(np.int64)
        return labels, model(torch.from_numpy(clips).to(device)).argmax(1).cpu().numpy()

    correct, per = 0, {}
    for labels, pred in distributed.map_sharded(predict, list(range(0, len(segs), batch))):
        correct += int((pred == labels).sum())
        for lab, p in zip(labels, pred):
            per.setdefault(int(lab), []).append(p == lab)
    n = max(len(segs), 1)
    return {"accuracy": correct / n, "mean_class_accuracy": float(np.mean([np.mean(v) for v in per.values()]))
            if per else 0.0, "segments": len(segs)}


def train_scnn(opts: SCNNTrainOptions, log=print) -> dict[str, Any]:
    """Build the stage's training data, network and optimizer, and run the Trainer."""
    from vidseg_cli.runtime import seed_everything
    from vidseg_cli.train.engine import Trainer, TrainSettings

    if opts.stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    if opts.recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}")
    distributed.check_batch_size(opts.setting("batch_size"))
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = distributed.device(opts.device)
    seed_everything(opts.seed)
    t0 = time.perf_counter()

    # 1. architecture: the recipe, the command line, or the classification network's.
    arch = {"width": opts.setting("width"), "frame_size": list(opts.setting("frame_size")),
            "crop_size": list(opts.setting("crop_size")), "dropout": opts.setting("dropout"),
            "pixel_mean": RECIPES[opts.recipe]["pixel_mean"],
            "pixel_scale": RECIPES[opts.recipe]["pixel_scale"],
            "window_lengths": list(SCNN_LENGTHS), "window_overlap": SCNN_OVERLAP}
    from_init = _arch_from_init(opts)
    if from_init:
        arch.update(from_init)
    spec = WindowSpec(tuple(arch["frame_size"]), tuple(arch["crop_size"]))

    # 2. data (S-CNN §3.2), with a held-out share of the untrimmed videos for validation.
    gt, videos = dataset_paths(opts.data, opts.gt, opts.videos)
    cache = FrameCache(opts.cache or Path(opts.out) / "frames_cache", spec.frame_size)
    data = distributed.main_first(lambda: load_scnn_data(  # rank 0 fills the frame cache
        gt, videos, cache, opts.subset, opts.trimmed, arch["window_lengths"], arch["window_overlap"]))
    train, val = data.split(opts.val_fraction, opts.seed)
    classes = ["background", "action"] if opts.stage == "proposal" else data.classes
    freq = train.window_frequency() if opts.stage != "proposal" else None

    # 3. network, initial weights, optimizer and schedule (S-CNN §3.2).
    model = MODELS.build("scnn", stage=opts.stage, num_classes=len(classes), window_frequency=freq, **arch)
    init_note = _init_weights(model, opts, data.classes) if opts.init else "random (no --init)"
    fc8 = list(model.fc8.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("fc8.")]
    groups = [{"params": rest, "lr": opts.setting("lr")}, {"params": fc8, "lr": opts.setting("fc8_lr")}]
    if opts.setting("optimizer") == "adam":
        optimizer = torch.optim.Adam(groups, lr=opts.setting("lr"), weight_decay=opts.weight_decay)
    else:
        optimizer = torch.optim.SGD(groups, lr=opts.setting("lr"), momentum=opts.momentum,
                                    weight_decay=opts.weight_decay)
    gamma = opts.lr_gamma if opts.lr_gamma is not None else LR_GAMMA[opts.stage]
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=opts.setting("lr_step"), gamma=gamma)

    # 4. the batches of an epoch: all positives and a fresh background sample (seeded).
    bs, iterations = opts.setting("batch_size"), opts.setting("iterations")
    per_epoch = distributed.batches_per_epoch(len(train.positives) + train.num_background(opts.stage), bs)

    def batches(epoch: int):
        rng = np.random.default_rng([opts.seed, epoch])
        segs = train.epoch(opts.stage, rng)
        for i in range(0, len(segs), bs):
            part = segs[i:i + bs]
            aug = train.augmentations(len(part), spec, rng)  # for the whole global batch
            mine = distributed.shard(list(range(len(part))))
            if mine is None:  # a ragged last batch smaller than the ranks
                continue
            clips, labels, overlap = train.batch([part[k] for k in mine], spec, augment=[aug[k] for k in mine])
            if opts.stage == "proposal":
                labels = (labels > 0).astype(np.int64)
            yield {"clip": torch.from_numpy(clips), "label": torch.from_numpy(labels),
                   "overlap": torch.from_numpy(overlap)}

    def loss_step(net: nn.Module, b: dict) -> torch.Tensor:
        logits = net(b["clip"])  # B x classes
        if opts.stage == "localization":  # Eq. (1), a mean over the batch
            loss = overlap_loss(logits, b["label"], b["overlap"], opts.alpha, opts.lam)
            if not distributed.current().active:
                return loss
            n = len(b["label"])
            return distributed.share(loss * n, n)  # this rank's share of the global mean
        return distributed.batch_mean(  # Eq. (2) over the global batch
            nn.functional.cross_entropy(logits.float(), b["label"], reduction="none"))

    val_segs = None
    if val is not None:
        vrng = np.random.default_rng([opts.seed, 99])
        val_segs = val.epoch(opts.stage, vrng)

    def validate(net: nn.Module) -> dict[str, float]:
        return evaluate_windows(net, val, val_segs, spec, device, stage=opts.stage)

    settings = TrainSettings(
        epochs=max(1, math.ceil(iterations / max(per_epoch, 1))), max_steps=iterations, seed=opts.seed,
        amp=opts.amp, monitor="mean_class_accuracy" if val_segs else None, quiet=opts.quiet,
        extra={"scnn": {k: v for k, v in asdict(opts).items() if k != "resolved"},
               "recipe_settings": {k: opts.setting(k) for k in RECIPES[opts.recipe]},
               "lr_gamma": gamma, "init": init_note, "data": {**data.stats, "classes": data.classes,
               "train_positives": len(train.positives), "train_background_pool": len(train.background),
               "background_per_epoch": train.num_background(opts.stage),
               "val_videos": len(val.held_videos()) if val else 0}})
    trainer = Trainer(model, classes, optimizer, opts.out, settings, device, scheduler=scheduler,
                      sharded=True)
    last = Path(opts.out) / "last.ckpt"
    if opts.resume:
        if not last.is_file():
            raise InputError(last, "nothing to resume (no last.ckpt in the run folder)")
        trainer.resume(last)
    if not opts.quiet:
        log(f"S-CNN {opts.stage}: {len(train.positives)} positives, "
            f"{train.num_background(opts.stage)} of {len(train.background)} background windows per "
            f"epoch, {len(val_segs or [])} validation segments; init: {init_note}", file=sys.stderr)
    history = trainer.fit(batches, loss_step, validate if val_segs else None, steps_per_epoch=per_epoch)
    summary = {"stage": opts.stage, "run_dir": str(opts.out), "steps": trainer.step,
               "epochs": trainer.epoch, "seconds": round(time.perf_counter() - t0, 1),
               "best": trainer.best, "final": history[-1] if history else None,
               "data": settings.extra["data"], "init": init_note}
    if distributed.current().main:
        write_text(Path(opts.out) / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
