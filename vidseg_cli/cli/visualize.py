"""`vidseg visualize`: overlay videos, timelines and metric plots of output files."""

from __future__ import annotations

from pathlib import Path

import click

from vidseg_cli.cli.common import (
    BatchResult,
    err_line,
    fail,
    finish,
    json_option,
    notice,
    overwrite_option,
    quiet_option,
    warn,
)

STAGE = "visualize"


@click.command(STAGE)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output folder; each input gives files named after it "
                   "(<name>.overlay.webm, <name>.timeline.svg, ...).")
@click.option("--frames", multiple=True, type=click.Path(),
              help="Frames files or folders, paired with labels and scores by video_id. "
                   "Default: the frames file each one's provenance names.")
@click.option("--gt", "gt_path", type=click.Path(),
              help="Ground truth: masks (labels .h5 files, J-HMDB, DAVIS), drawn as outlines; "
                   "or temporal segments (ActivityNet-style JSON, THUMOS14 folder, a synthetic "
                   "set), drawn under the predicted ones.")
@click.option("--subset", default=None,
              help="Subset of temporal ground truth (default: all of them).")
@click.option("--frames-png", type=click.IntRange(0), default=0, show_default=True,
              metavar="N", help="Also write N stills (PNG) spread over each overlay video.")
@click.option("--window", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Timeline seconds per row (default: one row up to 10 minutes, else "
                   "5-minute rows, longer past 24 rows).")
@overwrite_option
@quiet_option
@json_option
def visualize(inputs, out, frames, gt_path, subset, frames_png, window, overwrite, quiet,
              json_out):
    """Draw INPUTS (files or folders) into the folder -o:

    \b
      labels, scores .h5        the video with each class's colour over its pixels
                                (scores: the top class, opacity = its posterior), a
                                legend, ground-truth outlines with --gt: VP9 WebM
      detections, proposals,    a timeline: predicted segments per class (opacity =
      frame_scores .h5          score) above the ground truth, tIoU of each match,
                                frame-score curves: SVG and PNG
      evaluate's --json         AP per class (ActivityNet and THUMOS14 side by side),
                                mAP against tIoU, precision-recall curves; AR@AN
                                for proposals: SVG and PNG

    Class colours come from the class names, the same in every file and run. A bad
    input is one error line, and the others are still drawn. --json lists what was
    written.
    """
    from vidseg_cli.api import visualize as api
    from vidseg_cli.errors import InputError
    from vidseg_cli.progress import progress_bar

    files = _expand(inputs, quiet)
    prefixes = _prefixes(files, Path(out))
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(STAGE, f"{out}: cannot create output folder ({e.strerror})")
    opts = api.Options(frames=list(frames), gt=gt_path, subset=subset, frames_png=frames_png,
                       window=window, on_notice=lambda line: notice(STAGE, line, quiet),
                       progress=lambda total, what: progress_bar(total, what, quiet))
    try:
        runner = api.load(opts)
    except InputError as e:
        fail(STAGE, str(e))
    res = BatchResult()
    written: list[str] = []
    for f, prefix in zip(files, prefixes):
        try:
            kind = api.kind_of(f)
            planned = api.outputs_for(kind, prefix, frames_png, _num_frames(f, kind))
            if all(p.exists() for p in planned.values()) and not overwrite:
                notice(STAGE, f"{next(iter(planned.values()))}: exists, skipped (use "
                              "--overwrite to redo)", quiet)
                res.skipped.append(str(f))
                continue
            summary = runner.run({"predictions": f}, {"prefix": prefix})
        except InputError as e:
            click.echo(err_line(STAGE, str(e)), err=True)
            res.failed.append((str(f), str(e)))
            continue
        for line in summary.warnings:
            warn(STAGE, line)
        res.done.append(str(f))
        res.results.append(summary.to_json())
        written += summary.written
    finish(STAGE, res, len(files), json_out, {"written": written, "results": res.results},
           quiet)


def _expand(inputs, quiet: bool) -> list[Path]:
    """Files as given; folders to the files in them that visualize draws."""
    from vidseg_cli.api.visualize import KINDS, kind_of
    from vidseg_cli.errors import InputError

    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if not p.is_dir():
            out.append(p)
            continue
        found = []
        for f in sorted(p.iterdir()):
            if f.is_file() and f.suffix in (".h5", ".hdf5", ".json"):
                try:
                    if kind_of(f) in KINDS:
                        found.append(f)
                except InputError:
                    continue
        if not found:
            fail(STAGE, f"{p}: nothing to draw in this folder (labels, scores, detections, "
                        "proposals, frame_scores files or evaluate's JSON)")
        out += found
    return out


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".h5", ".hdf5", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _prefixes(files: list[Path], out: Path) -> list[Path]:
    """out/<name without .h5/.json>; names that two inputs share get their folder's name
    in front (fsn/a.detections.h5 and scnn/a.detections.h5 -> fsn_a..., scnn_a...)."""
    stems = [_stem(f) for f in files]
    shared = {s for s in stems if stems.count(s) > 1}
    out_names = [f"{f.parent.name}_{s}" if s in shared else s for f, s in zip(files, stems)]
    if len(set(out_names)) != len(out_names):
        dup = sorted({n for n in out_names if out_names.count(n) > 1})
        fail(STAGE, f"several inputs would be drawn as {dup[0]}; give them in separate runs")
    return [out / n for n in out_names]


def _num_frames(path: Path, kind: str) -> int | None:
    if kind not in ("labels", "scores"):
        return None
    from vidseg_cli import store

    with store.open_record(path, kind) as rec:
        return rec.num_frames
