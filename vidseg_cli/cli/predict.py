"""`vidseg predict`: one or a few videos through a paper's whole inference chain
(api/predict.py), the detections printed."""

from __future__ import annotations

from pathlib import Path

import click

from vidseg_cli.api.predict import DOCS, PIPELINES, STAGE
from vidseg_cli.cli.common import (
    Job,
    device_option,
    fail,
    finish,
    json_option,
    notice,
    overwrite_option,
    quiet_option,
    run_batch,
    warn,
)
from vidseg_cli.cli.extract_frames import _parse_size
from vidseg_cli.cmdline import command_line


def _pipelines_help() -> str:
    """The epilog of --help: each pipeline's stages, roles and post-processing, from PIPELINES."""
    import textwrap

    def wrap(text: str, indent: str) -> list[str]:
        return textwrap.wrap(text, 88, initial_indent=indent, subsequent_indent=indent + "    ",
                             break_on_hyphens=False)

    blocks = []
    for name in PIPELINES:
        p = PIPELINES.get(name)
        lines = wrap(f"{name}: {p.paper}; {p.stages}", "")
        for r in p.roles:
            lines += wrap(f"{r.name}=PATH{' (optional)' if r.optional else ''}: {r.what}; from "
                          f"{r.source}", "  ")
        lines += wrap(f"post-processing: {p.post}", "  ")
        blocks.append("\b\n" + "\n".join(lines))
    return "Pipelines and their --weights roles:\n\n" + "\n\n".join(blocks) + f"\n\nMore in {DOCS}."


def _roles(ctx, param, values):
    """--weights ROLE=PATH, repeatable -> {role: path}."""
    out: dict[str, str] = {}
    for v in values:
        role, sep, path = v.partition("=")
        if not sep or not role or not path:
            raise click.BadParameter(f"expected ROLE=PATH (e.g. backbone=b.ckpt), got {v!r}")
        if role in out:
            raise click.BadParameter(f"role '{role}' given twice")
        out[role] = path
    return out


@click.command(STAGE, epilog=_pipelines_help())
@click.argument("videos", nargs=-1, required=True, type=click.Path())
@click.option("--pipeline", required=True, metavar="|".join(PIPELINES),
              help="The paper's chain to run (below).")
@click.option("--weights", multiple=True, callback=_roles, metavar="ROLE=PATH",
              help="The weights of one role of the pipeline (below); repeat for each role.")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output folder: every file of every stage, <video_id>.<kind>.h5.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="extract-frames: resample to this frame rate (default: the source's).")
@click.option("--short-side", type=click.IntRange(1), default=None,
              help="extract-frames: resize so the shorter side is N pixels.")
@click.option("--size", callback=_parse_size, metavar="WxH", default=None,
              help="extract-frames: resize every frame to W x H pixels.")
@click.option("--show", type=click.IntRange(0), default=10, show_default=True,
              help="Detections printed per video, best first (all of them are in the "
                   "detections file and in --json).")
@click.option("--crf-jobs", type=click.IntRange(1), default=1, show_default=True,
              help="3dfcn: processes over a video's frames in crf-refine.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write the HTML report of the output folder (vidseg report) when this "
                   "vidseg has it.")
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision inference.")
@overwrite_option
@quiet_option
@json_option
def predict(videos, pipeline, weights, out, fps, short_side, size, show, crf_jobs, report, device,
            amp, overwrite, quiet, json_out):
    """Run VIDEOS through a paper's whole inference chain in one process: frames, then each
    stage with the weights of its roles, then the paper's post-processing. Every
    intermediate file is written to OUT as the stage itself would write it, so any stage
    can be rerun or evaluated on its own; a video whose files all exist is skipped unless
    --overwrite.

    Prints each video's detections (start and end in seconds, class, score) for the
    temporal pipelines, and the frames and pixels given to each class for the pixel ones.
    """
    from vidseg_cli.api import predict as api
    from vidseg_cli.errors import InputError
    from vidseg_cli.store import video_id_of

    if size is not None and short_side is not None:
        fail(STAGE, "--size and --short-side are exclusive; give one")
    folder = Path(out)
    if folder.suffix in (".h5", ".hdf5"):
        fail(STAGE, f"{out}: -o is a folder (predict writes several files per video)")
    opts = api.Options(pipeline=pipeline, weights=dict(weights), fps=fps, short_side=short_side,
                       size=size, device=device, amp=amp, crf_jobs=crf_jobs, command=command_line())
    try:
        api.check(opts)
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))
    ids = [video_id_of(v) for v in videos]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        fail(STAGE, f"several videos share the video id(s) {', '.join(dup)}; outputs would collide")
    try:
        runner = api.load(opts)
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(STAGE, f"{folder}: cannot create output folder ({e.strerror})")
    work = [Job({"video": v}, api.output_paths(pipeline, folder, i, opts.weights))
            for v, i in zip(videos, ids)]
    res = run_batch(STAGE, work, lambda job: runner.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    per_video = _per_video(pipeline, work, res)
    if json_out != "-":  # stdout is the JSON's
        for summary in per_video:
            click.echo(_lines(summary, show))
    report_path = _report(folder, quiet) if report and per_video else None
    finish(STAGE, res, len(videos), json_out,
           {"pipeline": pipeline, "results": per_video,
            **({"report": str(report_path)} if report_path else {})}, quiet=quiet)


def _per_video(pipeline: str, work: list[Job], res) -> list[dict]:
    """The summary of each video done or skipped, in input order; a skipped video's is read
    back from the files of the run that wrote them (api.predict.describe)."""
    from vidseg_cli.api.predict import describe
    from vidseg_cli.errors import InputError

    done = {r["input"]: r for r in res.results}
    failed = {src for src, _ in res.failed}
    out = []
    for job in work:
        if job.source in done:
            out.append(done[job.source])
        elif job.source not in failed:
            try:
                files = {t: str(p) for t, p in job.outputs.items()}
                out.append({**describe(pipeline, job.source, files).to_json(), "skipped": True})
            except InputError as e:
                warn(STAGE, f"cannot read back the outputs: {e}")
    return out


def _lines(s: dict, show: int) -> str:
    """A video's detections as a table (seconds), or its pixels per class."""
    rows = []
    head = f"{s['video_id']} ({s['pipeline']}{', skipped: its files exist' if s.get('skipped') else ''})"
    if "detections" in s:
        dets, n = s["detections"], len(s["detections"])
        rows.append(f"{head}: {n} detection{'s' * (n != 1)} (start and end in seconds)"
                    f"{':' if n and show else ''}")
        if n and show:
            rows.append(f"  {'start':>9} {'end':>9}  {'class':<24} {'score':>7}")
            for d in dets[:show]:
                rows.append(f"  {d['start']:9.2f} {d['end']:9.2f}  {d['label']:<24} {d['score']:7.3f}")
        if n > show:
            rows.append(f"  ... {n - show} more in {s['files']['detections']}")
    if "pixels" in s:
        px = s["pixels"]
        shares = ", ".join(f"{k} {100 * v:.1f}%" for k, v in px["class_shares"].items())
        rows.append(f"{head}: {px['frames']} frames, {px['action_frames']} with action pixels; "
                    f"pixels: {shares} ({px['file']})")
    return "\n".join(rows)


def _report(folder: Path, quiet: bool) -> Path | None:
    """The HTML report of the folder (vidseg_cli.viz.report), the path of its index.html."""
    from vidseg_cli.errors import InputError
    from vidseg_cli.runtime import cpu_cores
    from vidseg_cli.viz.report import write_report

    try:  # the overlay videos one per core, as `vidseg report` draws them
        path = write_report(folder, folder / "report", jobs=cpu_cores()).index
    except InputError as e:
        warn(STAGE, f"no report written: {e}")
        return None
    notice(STAGE, f"report: {path}", quiet)
    return path
