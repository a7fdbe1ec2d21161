"""`vidseg train scnn`: S-CNN's proposal, classification or localization network."""

from __future__ import annotations

import re

import click

from vidseg_cli.cli.common import fail, write_json
from vidseg_cli.cli.training import training_run_options


def _size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise click.BadParameter(f"expected AxB with positive integers, got {value!r}")
    return int(m.group(1)), int(m.group(2))


@click.command("scnn")
@click.option("--stage", type=click.Choice(["proposal", "classification", "localization"]),
              required=True, help="Which S-CNN network (S-CNN 3.2).")
@click.option("--data", required=True, type=click.Path(),
              help="Dataset folder: a `vidseg synth` set (gt.json, videos/) or a THUMOS14-style "
                   "folder (annotations/ per-class txt or gt.json, videos/).")
@click.option("--gt", type=click.Path(), default=None,
              help="Ground truth, if not DATA/gt.json or DATA/annotations (THUMOS14 txt folder or JSON).")
@click.option("--videos", type=click.Path(), default=None,
              help="Untrimmed videos (or .frames.h5 files) [default: DATA/videos].")
@click.option("--subset", default="training", show_default=True,
              help="Ground-truth subset to train on (THUMOS14: validation).")
@click.option("--trimmed", type=click.Path(), default=None,
              help="Trimmed clips, one folder per class (e.g. UCF101 for THUMOS14): positives.")
@click.option("--recipe", type=click.Choice(["paper", "synthetic"]), default="paper", show_default=True,
              help="paper: full C3D, 171x128 frames, 112x112 crop, lr 1e-4 (fc8 1e-2), 30K "
                   "iterations, SGD; synthetic: CPU-sized (width 0.1, 64x48 frames, Adam lr "
                   "1e-3, 1000 iterations; docs/scnn.md). Options below override it.")
@click.option("--init", type=click.Path(), default=None,
              help="Initial weights: the classification run's checkpoint (localization, S-CNN "
                   "3.2) or the C3D Sports-1M port c3d.pickle (full width, 112 crop).")
@click.option("--width", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="C3D channel multiplier.")
@click.option("--frame-size", callback=_size, default=None, metavar="WxH",
              help="Resize frames to W x H (S-CNN 3.1: 171x128).")
@click.option("--crop", "crop_size", callback=_size, default=None, metavar="HxW",
              help="Centre crop H x W (S-CNN 3.1: 112x112).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout after fc6 and fc7 [default: the recipe's, paper 0.5, synthetic 0.3].")
@click.option("--iterations", type=click.IntRange(1), default=None,
              help="Optimizer steps (S-CNN 4.2: 30K on THUMOS14).")
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None,
              help="sgd with momentum (S-CNN 3.2, both recipes) or adam.")
@click.option("--lr", type=float, default=None, help="Learning rate (S-CNN 3.2: 1e-4).")
@click.option("--fc8-lr", type=float, default=None, help="fc8's learning rate (S-CNN 3.2: 1e-2).")
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option("--lr-step", type=click.IntRange(1), default=None,
              help="Iterations between learning-rate drops (S-CNN 3.2: 10K).")
@click.option("--lr-gamma", type=click.FloatRange(0, 1), default=None,
              help="Drop factor [default: 0.1 proposal, 0.5 classification/localization].")
@click.option("--alpha", type=click.FloatRange(0, min_open=True), default=0.25, show_default=True,
              help="Overlap loss alpha (S-CNN Eq. 3, 4.2).")
@click.option("--lambda", "lam", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Overlap loss weight (S-CNN Eq. 1).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Share of untrimmed videos held out for validation.")
@click.option("--cache", type=click.Path(), default=None,
              help="Decoded-frame cache (share it between stages) [default: RUN_DIR/frames_cache].")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@training_run_options("out", max_steps=False,
                      run_files="last.ckpt, best.ckpt, log.jsonl, config.json, summary.json")
def train_scnn(stage, data, out, gt, videos, subset, trimmed, recipe, init, width, frame_size,
               crop_size, dropout, iterations, batch_size, optimizer, lr, fc8_lr, momentum, weight_decay, lr_step,
               lr_gamma, alpha, lam, val_fraction, cache, seed, device, amp, threads, resume,
               quiet, json_out):
    """Train one S-CNN network (S-CNN 3.2) on untrimmed videos with temporal annotations
    (and trimmed clips): windows with IoU > 0.7 are positives, < 0.3 background (a ground
    truth without such a window gives its best one if IoU > 0.5); background is sampled
    to N_T+N_U (proposal) or (N_T+N_U)/K. The localization network uses the overlap loss
    (Eq. 1-3) and starts from the classification network (--init). Writes RUN_DIR/best.ckpt
    for `vidseg propose` (proposal) and `vidseg localize --method scnn` (localization).
    """
    from vidseg_cli.errors import InputError
    from vidseg_cli.train.scnn import SCNNTrainOptions
    from vidseg_cli.train.scnn import train_scnn as run

    if stage == "localization" and not init and not quiet:
        click.echo("vidseg train: note: no --init; S-CNN fine-tunes the localization network "
                   "from the classification network", err=True)
    opts = SCNNTrainOptions(stage=stage, data=data, out=out, gt=gt, videos=videos, subset=subset,
                            trimmed=trimmed, recipe=recipe, init=init, width=width,
                            frame_size=frame_size, crop_size=crop_size, dropout=dropout, iterations=iterations,
                            batch_size=batch_size, optimizer=optimizer, lr=lr, fc8_lr=fc8_lr, momentum=momentum,
                            weight_decay=weight_decay, lr_step=lr_step, lr_gamma=lr_gamma,
                            alpha=alpha, lam=lam, val_fraction=val_fraction, seed=seed,
                            device=device, amp=amp, resume=resume, cache=cache, threads=threads,
                            quiet=quiet)
    try:
        summary = run(opts, log=lambda *a, **k: click.echo(" ".join(map(str, a)), err=True))
    except (InputError, ValueError) as e:
        fail("train", str(e))
    if json_out:
        write_json("train", json_out, summary)
    if not quiet:
        best = summary.get("best")
        click.echo(f"vidseg train: scnn {stage}: {summary['steps']} steps in {summary['seconds']} s"
                   + (f", best validation mean class accuracy {best:.3f}" if best is not None else "")
                   + f"; weights in {out}/best.ckpt", err=True)
