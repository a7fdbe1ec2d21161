"""`vidseg train sep3d-head`: train Sep3D's action-classification head on a frozen Sep3D, or
jointly with it (`--joint`)."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import fail
from vidseg_cli.cli.training import run_training, training_run_options

STAGE = "train sep3d-head"


@click.command("sep3d-head")
@click.option("--segmenter", required=True, type=click.Path(),
              help="A Sep3D checkpoint from `vidseg train segment --model sep3d` (kept frozen "
                   "unless --joint).")
@click.option("--data", required=True, type=click.Path(),
              help="Dataset folder with action classes: `vidseg synth` output (videos/, labels/) "
                   "or J-HMDB (Rename_Images/, puppet_mask/, splits/).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs (default 12).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate (default 3e-4, x0.95 per epoch).")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Clips per step (default 4).")
@click.option("--clips-per-video", type=click.IntRange(1), default=None,
              help="Training clips per video per epoch (default 4).")
@click.option("--val-videos", type=click.IntRange(0), default=4, show_default=True,
              help="Validation videos per epoch (0 = all of the validation split).")
@click.option("--split", type=click.IntRange(1, 3), default=1, show_default=True, help="J-HMDB split.")
@click.option("--joint", is_flag=True,
              help="Fine-tune the segmenter with the head (Sep3D §4): loss = head cross-entropy + "
                   "--seg-loss-weight x the segmentation loss of `train segment` on the same clips.")
@click.option("--segmenter-lr-mult", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --joint: the segmenter's learning rate is --lr times this (default 0.1).")
@click.option("--seg-loss-weight", type=click.FloatRange(min=0), default=None,
              help="With --joint: weight of the segmentation loss (default 1; 0 = the head's loss only).")
@click.option("--segmenter-bn", type=click.Choice(["update", "frozen"]), default=None,
              help="With --joint: BatchNorm statistics of the segmenter follow the training clips "
                   "(update, default) or stay those it was trained with (frozen).")
@click.option("--sync-bn", is_flag=True,
              help="Under torchrun, with --joint: the segmenter's BatchNorm statistics of the whole "
                   "batch over all processes. No effect in one process.")
@training_run_options()
def train_sep3d_head(segmenter, data, run_dir, epochs, max_steps, lr, batch_size, clips_per_video,
                     resume, seed, device, amp, val_videos, split, joint, segmenter_lr_mult,
                     seg_loss_weight, segmenter_bn, sync_bn, quiet, json_out):
    """Train the J-HMDB action-classification head of Sep3D (§4), on a frozen Sep3D or with it.

    Per frame, the largest connected region of the ground-truth actor mask, the box
    around it cropped from the Sep3D decoder features and resized to 7 x 7, then a conv and
    a linear layer, trained with cross-entropy on that region's action class (frames
    without an actor are skipped). The action classes are the dataset's without background
    (J-HMDB: its 21 folders; synthetic: its motions). Each epoch validates the accuracy
    with ground-truth masks, which picks best.ckpt.

    --joint trains the segmenter too (train mode, its rate --lr x --segmenter-lr-mult), on
    the head's cross-entropy plus --seg-loss-weight x `train segment`'s weighted
    cross-entropy of the segmentation (the target and class weights the segmenter was
    trained with where recorded, else foreground with weights 1, 1); validation adds the
    segmenter's foreground IoU (foreground_iou_clips). The checkpoints hold the fine-tuned
    segmenter.

    The checkpoint holds the segmenter too (model "sep3d+head"): `vidseg segment-3d
    --model sep3d --weights RUN_DIR/best.ckpt` then also writes per-frame action scores,
    which `vidseg evaluate` scores as frame-mAP (docs/segment3d.md).
    """
    from vidseg_cli.train.segment import with_overrides
    from vidseg_cli.train.segment_head import HeadRecipe, HeadTrainOptions, train_head

    if not joint and (segmenter_lr_mult is not None or seg_loss_weight is not None
                      or segmenter_bn is not None):
        fail(STAGE, "--segmenter-lr-mult, --seg-loss-weight and --segmenter-bn apply only with --joint")
    if sync_bn and not (joint and segmenter_bn != "frozen"):
        fail(STAGE, "--sync-bn applies only with --joint and the segmenter's BatchNorm statistics "
                    "updating (a frozen segmenter normalises with its running statistics)")
    r = with_overrides(HeadRecipe(), epochs=epochs, lr=lr, batch_size=batch_size,
                       clips_per_video=clips_per_video, joint=joint or None,
                       segmenter_lr_mult=segmenter_lr_mult, seg_loss_weight=seg_loss_weight,
                       segmenter_bn=segmenter_bn)
    opts = HeadTrainOptions(segmenter=segmenter, data=data, run_dir=run_dir, recipe=r,
                            max_steps=max_steps, resume=resume, seed=seed, device=device, amp=amp,
                            val_videos=val_videos, split=split, quiet=quiet, sync_bn=sync_bn)

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"vidseg {STAGE}: {msg}", err=True)

    summary = run_training(STAGE, lambda: train_head(opts, log=log), data=data, run_dir=run_dir,
                           json_out=json_out, value_errors_name_data=True)
    best = summary.get("best")
    log(f"{summary['epochs']} epochs, {summary['steps']} steps; best accuracy with ground-truth "
        f"masks {'-' if best is None else f'{best:.3f}'}; checkpoints in {run_dir}")
