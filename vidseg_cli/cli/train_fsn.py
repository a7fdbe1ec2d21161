"""`vidseg train backbone | fsn | wfsn`: the FSN paper's training recipes (train/backbone.py, fsn.py, fsn_e2e.py, wfsn.py)."""

from __future__ import annotations

from collections.abc import Callable

import click

from vidseg_cli.cli.common import fail, warn, write_json
from vidseg_cli.cli.training import training_run_options


def _common(*, lr: float, batch_size: int, epochs: int, steps: int) -> Callable:
    """Options every recipe shares; defaults per recipe."""

    def deco(f: Callable) -> Callable:
        opts = [
            click.option("--gt", required=True, type=click.Path(),
                         help="Temporal ground truth: ActivityNet-style JSON, THUMOS14 folder, or "
                              "a `vidseg synth` folder."),
            click.option("--subset", default="training", show_default=True,
                         help="Ground-truth subset to train on."),
            click.option("--val-subset", default=None,
                         help="Subset to validate on after each epoch (its videos must be among "
                              "the inputs); picks best.ckpt."),
            click.option("--epochs", type=click.IntRange(1), default=epochs, show_default=True),
            click.option("--steps-per-epoch", type=click.IntRange(1), default=steps, show_default=True,
                         help="Batches drawn (class-balanced, with replacement) per epoch."),
            click.option("--batch-size", type=click.IntRange(1), default=batch_size, show_default=True),
            click.option("--lr", type=click.FloatRange(0, min_open=True), default=lr, show_default=True),
            click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True),
            click.option("--weight-decay", type=click.FloatRange(0), default=5e-4, show_default=True),
            click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant",
                         show_default=True, help="Learning-rate schedule over the run."),
            click.option("--grad-clip", type=click.FloatRange(0, min_open=True), default=None,
                         help="Clip the gradient norm."),
        ]
        for o in reversed(opts):
            f = o(f)
        return training_run_options()(f)

    return deco


def _common_kwargs(kw: dict) -> dict:
    keys = ("epochs", "steps_per_epoch", "batch_size", "lr", "momentum", "weight_decay", "schedule",
            "grad_clip", "seed", "max_steps", "device", "amp", "quiet")
    return {k: kw[k] for k in keys}


def _load_gt(stage: str, gt: str, subset: str, val_subset: str | None):
    from vidseg_cli.datasets.temporal_gt import load_temporal_gt
    from vidseg_cli.errors import InputError

    try:
        train = load_temporal_gt(gt, subset)
        val = load_temporal_gt(gt, val_subset) if val_subset else None
    except InputError as e:
        fail(stage, str(e))
    return train, val


def _run(stage: str, fn: Callable, kw: dict) -> None:
    """Call a recipe, turn its known errors into one line, print/write the summary."""
    from vidseg_cli.core.registry import RegistryError
    from vidseg_cli.errors import InputError

    try:
        res = fn()
    except (InputError, RegistryError, ValueError, FloatingPointError) as e:
        fail(stage, str(e))
    for note in res.pop("notes", []):
        warn(stage, note)
    hist = res["history"]
    if not kw["quiet"] and hist:
        last = hist[-1]
        val = " ".join(f"{k}={v:.4g}" for k, v in last.get("val", {}).items())
        click.echo(f"vidseg {stage}: {last['epoch']} epochs, {last['step']} steps, loss {last['loss']:.4f} "
                   f"{val}; checkpoints in {res['run_dir']}", err=True)
    if kw.get("json_out"):
        write_json("train", kw["json_out"], {"stage": stage, **res})


@click.command("backbone")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--stream", type=click.Choice(["rgb", "flow"]), default="rgb", show_default=True,
              help="rgb: single frames; flow: 5 stacked flow fields around a frame (10 channels).")
@click.option("--flow", "flow_method", type=click.Choice(["tvl1", "farneback"]), default="farneback",
              show_default=True, help="Flow for the flow stream (TV-L1 is about 100x slower on a CPU). "
                                      "Extract features with the same method.")
@click.option("--arch", type=click.Choice(["resnet18", "resnet50"]), default="resnet18", show_default=True)
@click.option("--width", type=click.FloatRange(0, min_open=True), default=0.25, show_default=True,
              help="Channel multiplier (1.0 = the real network).")
@click.option("--init", type=click.Path(), default=None,
              help="Start from torchvision-layout ImageNet weights (width 1.0; flow: TSN "
                   "cross-modality init of conv1).")
@click.option("--sync-bn", is_flag=True,
              help="Under torchrun: BatchNorm statistics of the whole batch over all processes. "
                   "No effect in one process.")
@_common(lr=0.01, batch_size=32, epochs=10, steps=100)
def train_backbone(inputs, stream, flow_method, arch, width, init, sync_bn, **kw):
    """A 2D CNN frame classifier, TSN-style, on the frames files (or folders of them) in
    INPUTS, each frame labelled by the temporal ground truth (K actions + background),
    drawn class-balanced and randomly flipped: the backbone that extract-features uses
    where no ImageNet weights exist (FSN 3.2)."""
    from vidseg_cli.datasets.fsn_data import expand_inputs
    from vidseg_cli.errors import InputError
    from vidseg_cli.train.backbone import BackboneSettings
    from vidseg_cli.train.backbone import train_backbone as recipe

    gt, val = _load_gt("train backbone", kw["gt"], kw["subset"], kw["val_subset"])
    try:
        frames = expand_inputs(inputs, "frames")
    except InputError as e:
        fail("train backbone", str(e))
    s = BackboneSettings(**_common_kwargs(kw), arch=arch, width=width, stream=stream, flow=flow_method,
                         init=init, sync_bn=sync_bn)
    _run("train backbone", lambda: recipe(frames, gt, val, s, kw["run_dir"], kw["resume"]), kw)


@click.command("fsn")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--clip-snippets", type=click.IntRange(1), default=7, show_default=True,
              help="Snippets per training clip (FSN 3.5: 7, i.e. T = 35 frames); localize slides "
                   "windows of this length.")
@click.option("--min-action-frames", type=click.IntRange(0), default=5, show_default=True,
              help="Keep clips with at least this many action frames (FSN 3.5).")
@click.option("--window-step", type=click.IntRange(1), default=1, show_default=True,
              help="Stride of the training clip windows, in snippets.")
@click.option("--hidden", type=click.IntRange(1), default=256, show_default=True,
              help="Channels of the three temporal convolutions (the paper gives none).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--end-to-end", is_flag=True,
              help="INPUTS are frames files: fine-tune the 2D backbone (--backbone) with the "
                   "temporal CNN (FSN 3.5); also writes RUN/backbone.ckpt and RUN/fsn.ckpt.")
@click.option("--backbone", "backbone_weights", type=click.Path(), default=None,
              help="--end-to-end: our backbone checkpoint, or public weights with --arch.")
@click.option("--arch", type=click.Choice(["resnet18", "resnet50", "vgg16"]), default=None,
              help="--end-to-end with public weights: which network they are.")
@click.option("--stream", type=click.Choice(["rgb", "flow"]), default="rgb", show_default=True,
              help="--end-to-end: the backbone's input.")
@click.option("--snippet", type=click.IntRange(1), default=5, show_default=True,
              help="--end-to-end: frames per snippet.")
@click.option("--flow", "flow_method", type=click.Choice(["tvl1", "farneback"]), default="farneback",
              show_default=True, help="--end-to-end, flow stream: the flow method.")
@_common(lr=1e-4, batch_size=12, epochs=10, steps=200)
def train_fsn(inputs, clip_snippets, min_action_frames, window_step, hidden, dropout, end_to_end,
              backbone_weights, arch, stream, snippet, flow_method, **kw):
    """FSN's temporal CNN (FSN 3.3) on the features files (or folders) in INPUTS: clips of
    --clip-snippets snippets keeping those with --min-action-frames action frames, drawn
    class-balanced, frame-wise cross-entropy (Eq. 4); SGD lr 1e-4, momentum 0.9, weight
    decay 5e-4, batch 12 (FSN 3.5). With --end-to-end, INPUTS are frames files and the 2D
    backbone is trained with it."""
    from vidseg_cli.datasets.fsn_data import expand_inputs
    from vidseg_cli.errors import InputError
    from vidseg_cli.train import fsn as recipes
    from vidseg_cli.train import fsn_e2e

    stage = "train fsn"
    if not end_to_end and (backbone_weights or arch):
        fail(stage, "--backbone and --arch are for --end-to-end")
    if end_to_end and not backbone_weights:
        fail(stage, "--end-to-end needs --backbone (a backbone checkpoint or public weights)")
    gt, val = _load_gt(stage, kw["gt"], kw["subset"], kw["val_subset"])
    try:
        files = expand_inputs(inputs, "frames" if end_to_end else "features")
    except InputError as e:
        fail(stage, str(e))
    common = dict(_common_kwargs(kw), clip_snippets=clip_snippets, min_action_frames=min_action_frames,
                  window_step=window_step, hidden=hidden, dropout=dropout)
    if end_to_end:
        s = fsn_e2e.EndToEndSettings(**common, snippet=snippet, stream=stream, flow=flow_method,
                                     backbone=backbone_weights, arch=arch)
        _run(stage, lambda: fsn_e2e.train_fsn_end_to_end(files, gt, val, s, kw["run_dir"], kw["resume"]), kw)
    else:
        s = recipes.FSNSettings(**common)
        _run(stage, lambda: recipes.train_fsn(files, gt, val, s, kw["run_dir"], kw["resume"]), kw)


@click.command("wfsn")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--segments", type=click.IntRange(1), default=100, show_default=True,
              help="M equal segments per video, one random snippet from each (FSN 3.5).")
@click.option("--pooling", type=click.Choice(["max", "avg"]), default="max", show_default=True,
              help="Temporal pooling to the video score: GMP (FSN 3.4's choice) or GAP.")
@click.option("--hidden", type=click.IntRange(1), default=256, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@_common(lr=1e-4, batch_size=12, epochs=10, steps=100)
def train_wfsn(inputs, segments, pooling, hidden, dropout, **kw):
    """The weakly supervised FSN (FSN 3.4) on the features files (or folders) in INPUTS,
    from video-level labels only (the classes that occur in each video, read from --gt):
    M segments, one random snippet each, pooled K scores, cross-entropy (Eq. 3)."""
    from vidseg_cli.datasets.fsn_data import expand_inputs
    from vidseg_cli.errors import InputError
    from vidseg_cli.train.wfsn import WFSNSettings
    from vidseg_cli.train.wfsn import train_wfsn as recipe

    gt, val = _load_gt("train wfsn", kw["gt"], kw["subset"], kw["val_subset"])
    try:
        files = expand_inputs(inputs, "features")
    except InputError as e:
        fail("train wfsn", str(e))
    s = WFSNSettings(**_common_kwargs(kw), segments=segments, pooling=pooling, hidden=hidden, dropout=dropout)
    _run("train wfsn", lambda: recipe(files, gt, val, s, kw["run_dir"], kw["resume"]), kw)
