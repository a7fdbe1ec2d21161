"""`vidseg train segment-tube`: Segment-tube's proposal and classification networks."""

from __future__ import annotations

import click

from vidseg_cli.cli.training import run_training, training_run_options


@click.command("segment-tube")
@click.option("--data", required=True, type=click.Path(),
              help="Dataset folder: a `vidseg synth` set (gt.json, videos/) or a THUMOS14-style "
                   "folder (annotations/ per-class txt or gt.json, videos/).")
@click.option("--gt", type=click.Path(), default=None,
              help="Ground truth, if not DATA/gt.json or DATA/annotations.")
@click.option("--videos", type=click.Path(), default=None,
              help="Untrimmed videos (or .frames.h5 files) [default: DATA/videos].")
@click.option("--subset", default="training", show_default=True,
              help="Ground-truth subset to train on (THUMOS14: validation).")
@click.option("--init", required=True, type=click.Path(),
              help="The C3D trunk: an S-CNN checkpoint of ours (its frame size, crop and pixel "
                   "normalization are kept) or the C3D Sports-1M port c3d.pickle.")
@click.option("--recipe", type=click.Choice(["synthetic", "paper"]), default="synthetic", show_default=True,
              help="synthetic (CPU): frozen trunk, fc7 cached in RUN_DIR/features, both LSTM heads, "
                   "Adam lr 1e-3, 40 epochs; paper (GPU): trunk and heads end to end, SGD lr "
                   "1e-4, 20 epochs. Options below override it.")
@click.option("--epochs", type=click.IntRange(1), default=None)
@click.option("--lr", type=float, default=None, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Chunks per step.")
@click.option("--seq-len", type=click.IntRange(1), default=None,
              help="Consecutive windows per chunk [default: 32].")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default=None)
@click.option("--hidden", type=click.IntRange(1), default=256, show_default=True,
              help="LSTM hidden states per layer (Segment-tube 2.1: 256).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.5, show_default=True,
              help="Dropout on fc7 before each LSTM (the paper gives none).")
@click.option("--clip-mask", type=click.Choice(["soft", "hard", "none"]), default="soft", show_default=True,
              help="Saliency-aware clips: pixels outside the initial mask blended toward the "
                   "trunk's pixel mean (soft), replaced by it (hard), or kept (none).")
@click.option("--mask-keep", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of a pixel outside the mask that a soft mask keeps.")
@click.option("--unmasked-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Mask shift: the share of training windows, drawn anew every epoch, whose clips "
                   "are left unmasked (the command masks round 1 by B_o, later rounds by the cut).")
@click.option("--saliency", type=click.Choice(["static", "motion"]), default="static", show_default=True,
              help="The initial mask B_o (Segment-tube 2.3): fine-grained static saliency, or "
                   "difference from the temporal median.")
@click.option("--superpixels", type=click.IntRange(1), default=400, show_default=True,
              help="SLIC superpixels per frame.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Share of videos held out for validation.")
@click.option("--cache", type=click.Path(), default=None,
              help="Decoded-frame cache [default: RUN_DIR/frames_cache].")
@click.option("--features", type=click.Path(), default=None,
              help="Saliency mask and fc7 cache [default: RUN_DIR/features].")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@training_run_options("out", run_files="last.ckpt, best.ckpt, log.jsonl, config.json, summary.json, "
                                       "features/")
def train_segment_tube(data, gt, videos, subset, init, recipe, epochs, lr, batch_size, seq_len, optimizer,
                       hidden, dropout, clip_mask, mask_keep, unmasked_share, saliency, superpixels, val_fraction,
                       cache, features, threads, out, resume, seed, max_steps, device, amp, quiet, json_out):
    """Train Segment-tube's proposal and classification networks (Segment-tube 2.1): a C3D
    trunk from --init, fc7 of saliency-aware clips of 16 and 32 frames (75% overlap), two
    2-layer peephole LSTMs trained on chunks of consecutive windows labelled by coverage
    (docs/segment_tube.md). The checkpoint holds the trunk and both networks, for
    `vidseg segment-tube --weights RUN_DIR/best.ckpt`. The paper recipe is for a GPU.
    """
    from vidseg_cli.train.segment_tube import SegmentTubeTrainOptions, train_segment_tube

    opts = SegmentTubeTrainOptions(
        data=data, out=out, init=init, gt=gt, videos=videos, subset=subset, recipe=recipe,
        epochs=epochs, lr=lr, batch_size=batch_size, seq_len=seq_len, optimizer=optimizer,
        hidden=hidden, dropout=dropout, clip_mask=clip_mask, mask_keep=mask_keep,
        unmasked_share=unmasked_share, saliency=saliency, superpixels=superpixels,
        val_fraction=val_fraction, max_steps=max_steps, seed=seed,
        device=device, amp=amp, resume=resume, cache=cache, features=features, threads=threads,
        quiet=quiet)
    log = lambda *a, **k: click.echo(" ".join(map(str, a)), err=True)  # noqa: E731
    summary = run_training("train", lambda: train_segment_tube(opts, log=log), data=data, run_dir=out,
                           json_out=json_out)
    if not quiet:
        best = summary.get("best")
        click.echo(f"vidseg train: segment-tube: {summary['steps']} steps in {summary['seconds']} s"
                   + (f", best validation mean class accuracy {best:.3f}" if best is not None else "")
                   + f"; weights in {out}/best.ckpt", err=True)
