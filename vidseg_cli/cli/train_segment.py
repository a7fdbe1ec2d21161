"""`vidseg train segment`: train 3DFCN (32s, 8s) or Sep3D on per-pixel labels."""

from __future__ import annotations

import click

from vidseg_cli.cli.training import run_training, training_run_options

STAGE = "train segment"


def _weights(ctx, param, value):
    if value is None:
        return None
    try:
        bg, fg = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected BACKGROUND,ACTION weights such as 0.1,10, got {value!r}") from None
    if bg < 0 or fg < 0 or bg + fg == 0:
        raise click.BadParameter(f"weights must be >= 0 and not both 0, got {value!r}")
    return (bg, fg)


def _context(ctx, param, value):
    if value is None:
        return None
    if value == "none":
        return (0, 0, 0)
    if value == "half-window":
        from vidseg_cli.train.segment import HALF_WINDOW

        return HALF_WINDOW
    try:
        t, h, w = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected T,H,W frames/rows/columns, 'half-window' or 'none', got {value!r}") from None
    if min(t, h, w) < 0:
        raise click.BadParameter(f"context must be >= 0, got {value!r}")
    return (t, h, w)


@click.command("segment")
@click.option("--model", required=True, type=click.Choice(["3dfcn-8s", "3dfcn-32s", "sep3d"]),
              help="Network to train (3DFCN §3.3-3.4, Sep3D §3).")
@click.option("--data", required=True, type=click.Path(),
              help="Dataset folder: `vidseg synth` output (videos/, labels/), J-HMDB "
                   "(Rename_Images/, puppet_mask/, splits/) or DAVIS 2016 (JPEGImages/, Annotations/).")
@click.option("--recipe", type=click.Choice(["paper", "synthetic"]), default="paper", show_default=True,
              help="paper: the paper's settings (3DFCN §4.2: weighted loss 0.1/10, SGD momentum 0.99, "
                   "lr 1e-6, wd 5e-4, batch 1; Sep3D §4: Adam 1e-4 decayed 0.95/epoch, crops 384, "
                   "scale 0.5-2, flips). synthetic: CPU-sized (width 1/8, Adam), docs/segment3d.md.")
@click.option("--init", type=click.Path(), default=None,
              help="Initial weights: the C3D Sports-1M port (c3d.pickle) for 3DFCN, torchvision's "
                   "r2plus1d_18 state_dict for Sep3D, or one of our checkpoints of the same model.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs (recipe's by default).")
@click.option("--width", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Channel multiplier (1.0 = the paper's network; public weights need 1.0).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Clips per step.")
@click.option("--clip-len", type=click.IntRange(0), default=None,
              help="Frames per training clip (0 = whole videos; Sep3D runs 8-frame clips).")
@click.option("--crop", type=click.IntRange(1), default=None, help="Square spatial crop side, pixels.")
@click.option("--short-side", type=click.IntRange(1), default=None,
              help="Resize frames so the shorter side is N (recorded; segment-3d does the same).")
@click.option("--class-weights", callback=_weights, default=None, metavar="BG,ACTION",
              help="Loss weights of background and of every action class (3DFCN: 0.1,10).")
@click.option("--target", type=click.Choice(["classes", "foreground"]), default=None,
              help="classes: background + the dataset's actions; foreground: one action class "
                   "(defaults: 3DFCN classes, Sep3D foreground; DAVIS is always foreground).")
@click.option("--context", callback=_context, default=None, metavar="T,H,W|half-window|none",
              help="3DFCN: mirrored frames/rows/columns around every clip and video, so every "
                   "pixel is a class-map window centre (synthetic recipe: half-window = 8,64,64; "
                   "paper: none). Recorded; segment-3d does the same.")
@click.option("--clips-per-video", type=click.IntRange(1), default=None, help="Training clips per video per epoch.")
@click.option("--val-videos", type=click.IntRange(0), default=4, show_default=True,
              help="Validation videos per epoch (0 = all of the validation split).")
@click.option("--split", type=click.IntRange(1, 3), default=1, show_default=True, help="J-HMDB split.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="3DFCN: dropout after conv-fc6 and conv-fc7 (3DFCN 3.3: 0.5).")
@click.option("--sync-bn", is_flag=True,
              help="Under torchrun: BatchNorm statistics of the whole batch over all processes "
                   "(sep3d; the other models have no BatchNorm). No effect in one process.")
@training_run_options()
def train_segment(model, data, run_dir, recipe, init, epochs, max_steps, resume, seed, device, amp,
                  width, lr, batch_size, clip_len, crop, short_side, class_weights, target,
                  context, clips_per_video, val_videos, split, dropout, sync_bn, quiet, json_out):
    """Train a per-pixel action segmentation network on videos with pixel labels.

    Every epoch ends with a validation on the dataset's held-out videos (synthetic:
    synth_test_*; J-HMDB: the split's test list; DAVIS: val) by segment-3d's own inference,
    scored by the foreground IoU (3DFCN §4.1), which picks best.ckpt. Checkpoints record
    the model, classes, configuration and preprocessing (mean/std, resize), so segment-3d
    runs them as trained.
    """
    from vidseg_cli.cli.common import fail
    from vidseg_cli.train.segment import SegmentTrainOptions, get_recipe, with_overrides
    from vidseg_cli.train.segment import train_segment as run

    if sync_bn and model != "sep3d":
        fail(STAGE, f"--sync-bn: {model} has no BatchNorm layers (only sep3d has)")
    if dropout is not None and not model.startswith("3dfcn"):
        fail(STAGE, f"--dropout: {model} has no dropout layers (3dfcn-8s and 3dfcn-32s have)")
    r = with_overrides(get_recipe(model, recipe), epochs=epochs, width=width, lr=lr,
                       batch_size=batch_size, clip_len=clip_len, crop=crop, short_side=short_side,
                       class_weights=class_weights, target=target, context=context,
                       clips_per_video=clips_per_video)
    if dropout is not None:
        r = with_overrides(r, model_config={**r.model_config, "dropout": dropout})
    opts = SegmentTrainOptions(model=model, data=data, run_dir=run_dir, recipe=r, init=init,
                               max_steps=max_steps, resume=resume, seed=seed, device=device, amp=amp,
                               val_videos=val_videos, split=split, quiet=quiet, sync_bn=sync_bn)

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"vidseg {STAGE}: {msg}", err=True)

    summary = run_training(STAGE, lambda: run(opts, log=log), data=data, run_dir=run_dir,
                           json_out=json_out)
    best = summary.get("best")
    log(f"{summary['epochs']} epochs, {summary['steps']} steps; best foreground IoU "
        f"{'-' if best is None else f'{best:.3f}'}; checkpoints in {run_dir}")
