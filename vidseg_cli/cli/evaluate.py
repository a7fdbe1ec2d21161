"""`vidseg evaluate`: score predictions against ground truth and print a table."""

from __future__ import annotations

import os
import re
import sys

import click

from vidseg_cli.cli.common import fail, json_option, notice, warn, write_json

STAGE = "evaluate"


def _parse_tiou(ctx, param, value):
    """'0.3,0.4,0.5' or 'start:stop:step' (stop included)."""
    if value is None:
        return None
    import numpy as np

    text = value.strip()
    try:
        if ":" in text:
            a, b, s = (float(x) for x in text.split(":"))
            if s <= 0 or b < a:
                raise ValueError
            n = int(round((b - a) / s)) + 1
            vals = np.linspace(a, a + (n - 1) * s, n)
        else:
            vals = np.array([float(x) for x in re.split(r"[,\s]+", text) if x])
    except ValueError:
        raise click.BadParameter(
            f"expected thresholds like 0.3,0.4,0.5 or 0.5:0.95:0.05, got {value!r}"
        ) from None
    if len(vals) == 0 or (vals <= 0).any() or (vals > 1).any():
        raise click.BadParameter(f"thresholds must lie in (0, 1], got {value!r}")
    return vals


@click.command(STAGE)
@click.argument("predictions", nargs=-1, required=True, type=click.Path())
@click.option("--gt", "gt_path", required=True, type=click.Path(),
              help="Ground truth: a THUMOS14 annotation folder (detclasslist.txt + "
                   "<Class>_<subset>.txt), an ActivityNet-style JSON, a synthetic set's "
                   "folder (its gt.json), or, for masks, what the pixel metrics read.")
@click.option("--protocol", type=click.Choice(["activitynet", "thumos14"]), default=None,
              help="Detection scorer to follow: activitynet (eval_detection.py; tIoU "
                   "0.5:0.05:0.95) or thumos14 (TH14evalDet_Updated.m; tIoU 0.1..0.7). "
                   "Default: thumos14 for a THUMOS14 folder, activitynet for JSON.")
@click.option("--tiou", callback=_parse_tiou, default=None, metavar="LIST",
              help="Thresholds, e.g. 0.3,0.4,0.5 or 0.5:0.95:0.05 (default: the protocol's).")
@click.option("--subset", default=None,
              help="Ground-truth subset (test, val, training, validation, ...); "
                   "default: the only one present.")
@click.option("--time-base", type=click.Choice(["fps", "timestamps"]), default="fps",
              show_default=True,
              help="Seconds of our HDF5 frame segments: frame / fps, or the timestamps of "
                   "the frames file found through the file's provenance.")
@click.option("--max-proposals", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Proposals: the largest average number per video (AN) "
                                      "of the AR@AN curve (ActivityNet uses 100).")
@click.option("--davis-task", type=click.Choice(["unsupervised", "semi-supervised"]),
              default="unsupervised", show_default=True,
              help="Masks: which frames DAVIS excludes (unsupervised is Sep3D's setting).")
@click.option("--pixel-frames", type=click.Choice(["all", "gt-action"]), default="all",
              show_default=True,
              help="Masks against labels or J-HMDB ground truth: score every frame, or only the "
                   "frames whose ground truth holds an action (Segment-tube Table 3).")
@click.option("--classes", "classes", type=click.Path(), default=None, metavar="FILE",
              help="Names of integer class labels (ActionFormer's eval_results.pkl): lines "
                   "'index name', or one name per line from index 0 (OpenTAD's "
                   "category_idx.txt). Default: the ground truth's 'label_id's.")
@click.option("--strict", is_flag=True,
              help="Make every warning about a questionable record an error (exit 2).")
@json_option
def evaluate(predictions, gt_path, protocol, tiou, subset, time_base, max_proposals,
             davis_task, pixel_frames, classes, strict, json_out):
    """Score PREDICTIONS against the ground truth and print a table.

    \b
    PREDICTIONS (one kind at a time; folders are expanded):
      detections .h5      mAP per tIoU and AP per class, under --protocol
      ActivityNet JSON    {"results": {video: [{"segment", "label", "score"}]}}
      THUMOS14 text       lines 'video start end class_index score'
      other tools'        OpenTAD's result_detection.json and mmaction2's JSON dump
      results             (ActivityNet JSON); ActionFormer's eval_results.pkl and
                          mmaction2's --dump .pkl, read as plain data only (a pickle
                          naming anything else is refused, never run)
      proposals .h5/JSON  AR@AN, ActivityNet's average recall vs average
                          number of proposals per video, and its AUC
      frame_scores .h5    frame-level AP per class over all frames (FSN Table 1)
      labels/scores .h5,  pixel-level metrics (3DFCN IoUs, DAVIS J/F, per-category
      mask folders        IoU; frame-mAP @0.5 when scores carry Sep3D's action_scores);
                          see docs/evaluate_pixel.md

    \b
    The two protocols differ (docs/evaluate.md has the full list):
      activitynet  detections matched in score order to the best free ground truth
                   with tIoU >= t; interpolated (VOC 2011) AP; Ambiguous ignored.
      thumos14     each ground truth in turn takes the best free detection with
                   overlap > t; plain AP (mean precision at each hit); free
                   detections on Ambiguous segments are dropped, not false positives.

    --json writes {"protocol", "mAP": {"0.5": ...}, "AP": {class: {"0.5": ...}}, ...}
    for detections; {"AR@AN": {"100": ...}, "AUC", "curve"} for proposals;
    {"mAP", "AP": {class: ...}} for frame scores.

    A prediction for a video the ground truth lacks, an unknown class, a NaN score,
    end <= start, an empty file: one warning line with a count, handled as the
    official scorer would (an error under --strict). Exit 0 done, 2 bad input.
    """
    from vidseg_cli.api import evaluate as api

    opts = api.Options(protocol=protocol, tiou=tiou, subset=subset, time_base=time_base,
                       max_proposals=max_proposals, davis_task=davis_task,
                       pixel_frames=pixel_frames, strict=strict, classes=classes,
                       on_warning=lambda line: warn(STAGE, line),
                       on_notice=lambda line: notice(STAGE, line))
    try:
        summary = api.load(opts).run({"predictions": list(predictions), "ground-truth": gt_path})
    except _known_errors() as e:
        fail(STAGE, str(e))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # still one line; the traceback on request
        if os.environ.get("VIDSEG_DEBUG"):
            raise
        fail(STAGE, f"{predictions[0]}: {e.__class__.__name__}: {e}")
    _report(summary, json_out)


def _known_errors():
    from vidseg_cli.errors import InputError

    return (InputError,)


def _report(summary, json_out: str | None) -> None:
    from rich.console import Console

    if summary.kind == "pixel":
        from vidseg_cli.metrics.pixel_report import pixel_table

        table = pixel_table(summary.metrics)
    else:
        from vidseg_cli.metrics.temporal_report import result_table

        table = result_table(summary.metrics)
    # With --json -, stdout carries the JSON alone; the table goes to stderr.
    Console(stderr=json_out == "-", width=200 if not sys.stdout.isatty() else None).print(table)
    if json_out:
        write_json(STAGE, json_out, summary.to_json())
