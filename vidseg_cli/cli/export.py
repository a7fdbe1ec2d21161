"""`vidseg export`: detections files to ActivityNet-style result JSON or THUMOS14 text."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vidseg_cli.cli.common import fail, json_option, notice, quiet_option, warn
from vidseg_cli.core.fs import write_text

STAGE = "export"


@click.command(STAGE)
@click.argument("detections", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output file: results JSON, or THUMOS14 detection text for a .txt name.")
@click.option("--format", "fmt", type=click.Choice(["activitynet", "thumos14"]), default=None,
              help="activitynet: {\"results\": {video: [{\"segment\", \"label\", \"score\"}]}}; "
                   "thumos14: lines 'video start end class_index score' (class_index = the "
                   "index in the file's class_names). Default: from the output's suffix.")
@click.option("--time-base", type=click.Choice(["fps", "timestamps"]), default="fps",
              show_default=True,
              help="Seconds of frame segments: frame / fps, or the timestamps of the frames "
                   "file found through the file's provenance.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@quiet_option
@json_option
def export(detections, out, fmt, time_base, overwrite, quiet, json_out):
    """Write DETECTIONS (our detections .h5 files, or folders of them) as one
    ActivityNet-style result JSON - the format `vidseg evaluate` and the ActivityNet
    scorer read - or as THUMOS14 detection text for TH14evalDet.

    Segments [start, end) in frames become seconds (frame / fps); labels become the
    file's class names; background (class 0) detections are left out, with a warning.
    """
    from vidseg_cli.errors import InputError
    from vidseg_cli.store.base import StoreError

    try:
        summary = _export(list(detections), out, fmt, time_base, overwrite, quiet)
    except (InputError, StoreError) as e:
        fail(STAGE, str(e))
    if summary and json_out:
        text = json.dumps(summary, indent=2)
        if json_out == "-":
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")


def _export(paths, out, fmt, time_base, overwrite, quiet):
    from vidseg_cli import store
    from vidseg_cli.datasets.predictions import classify_inputs, read_predictions
    from vidseg_cli.errors import InputError

    o = Path(out)
    if fmt is None:
        fmt = "thumos14" if o.suffix.lower() == ".txt" else "activitynet"
    if o.exists() and not overwrite:
        notice(STAGE, f"{o}: exists, skipped (use --overwrite to redo)", quiet)
        return None
    kind, files = classify_inputs(paths)
    if kind != "detections":
        raise InputError(files[0], f"expected detections files, found {kind}")
    pred = read_predictions(kind, files, time_base)
    for where, text in _export_issue_lines(pred.issues):
        warn(STAGE, f"{where}: {text}")

    bg = pred.label == "background"
    if bg.any():
        warn(STAGE, f"{pred.sources[0] if len(files) == 1 else f'{len(files)} files'}: "
                    f"{int(bg.sum())} background detections left out")
    keep = ~bg
    if fmt == "activitynet":
        results: dict[str, list] = {v: [] for v in sorted(pred.videos_seen)}
        for v, (s, e), c, sc in zip(pred.video[keep], pred.segments[keep], pred.label[keep],
                                    pred.score[keep]):
            results[str(v)].append({"segment": [float(s), float(e)], "label": str(c), "score": float(sc)})
        text = json.dumps({"version": "vidseg", "external_data": {}, "results": results})
    else:
        index = {}
        for f in files:
            names = store.read_detections(f).class_names
            for k, c in enumerate(names):
                if index.setdefault(c, k) != k:
                    raise InputError(f, f"class '{c}' has index {k} here but {index[c]} in another file")
        lines = [
            f"{v} {s:.6g} {e:.6g} {index[str(c)]} {sc:.9g}\n"
            for v, (s, e), c, sc in zip(pred.video[keep], pred.segments[keep], pred.label[keep],
                                        pred.score[keep])
        ]
        text = "".join(lines)
    _atomic_write(o, text)
    n = int(keep.sum())
    notice(STAGE, f"{o}: {n} detections of {len(pred.videos_seen)} videos written ({fmt})", quiet)
    return {"stage": STAGE, "output": str(o), "format": fmt, "videos": len(pred.videos_seen),
            "detections": n, "background_left_out": int(bg.sum()),
            "warnings": dict(pred.issues.counts)}


def _export_issue_lines(issues):
    from vidseg_cli.metrics.temporal_report import issue_lines

    out = []
    for where, text in issue_lines(issues):
        # the evaluation's wording about scoring does not apply here; keep the count part
        out.append((where, text.split(";")[0] + "; written as they are"))
    return out


def _atomic_write(path: Path, text: str) -> None:
    try:
        (path.parent if str(path.parent) else Path(".")).mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    except OSError as e:
        fail(STAGE, f"{path}: cannot write ({e.strerror})")
