"""`vidseg import-features`: published feature sets (ActionFormer/OpenTAD .npy, G-TAD
HDF5, BSN/BMN CSV) to our features files, their frames and seconds right."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import (
    Job,
    fail,
    finish,
    jobs_option,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

STAGE = "import-features"


@click.command(STAGE)
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 (a source of one video) or folder (<video_id>.features.h5 each).")
@click.option("--layout", type=click.Choice(["npy", "h5", "csv"]), default=None,
              help="npy: <video>.npy of (T, D) (ActionFormer, OpenTAD); h5: one dataset per "
                   "video (G-TAD); csv: <video>.csv, a header then T rows (BSN, BMN). Default: "
                   "from the files' suffix.")
@click.option("--snippet", type=click.IntRange(1), default=None,
              help="Frames each feature was computed on (ActionFormer's THUMOS14 I3D: 16).")
@click.option("--stride", type=click.IntRange(1), default=None,
              help="Frames between feature starts (ActionFormer's THUMOS14 I3D: 4).")
@click.option("--rescaled/--no-rescaled", default=None,
              help="Each video's rows are spread evenly over it (BSN/BMN's csv_mean_100), rather "
                   "than snippets at a stride. Default: rescaled for csv only.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate the set was extracted at (default: each video's, from --video-info).")
@click.option("--video-info", type=click.Path(), default=None,
              help="The set's per-video metadata: ActivityNet-style JSON with duration and fps "
                   "(ActionFormer's thumos14.json), BMN's anet_anno_action.json or "
                   "video_info_new.csv. Gives each video's frame count, checked against its rows.")
@click.option("--with", "with_sources", multiple=True, type=click.Path(),
              help="Another source of the same videos in the same layout whose features are "
                   "appended (G-TAD: flow_val.h5 --with rgb_val.h5). Repeatable.")
@click.option("--strip-prefix", default="", metavar="TEXT",
              help="Drop TEXT from the start of video ids (v_: BMN's and OpenTAD's ActivityNet "
                   "files are v_<id>, ActivityNet's annotations <id>).")
@click.option("--backbone", default="imported", show_default=True,
              help="What extracted the set (recorded; training and localization check it agrees).")
@click.option("--stream", default="imported", show_default=True,
              help="Which stream(s) it holds, e.g. rgb+flow (recorded, as --backbone).")
@overwrite_option
@jobs_option
@quiet_option
@json_option
def import_features(sources, out, layout, snippet, stride, rescaled, fps, video_info, with_sources,
                    strip_prefix, backbone, stream, overwrite, jobs, quiet, json_out):
    """Turn the features of SOURCES (files or folders of a published set) into one
    features file per video, whose `centers` and `fps` place each row in the video.

    \b
    Snippets rule (npy, h5): row i stands for frames [i*stride, i*stride + snippet),
    centre frame i*stride + snippet//2, time (i*stride + snippet/2) / fps, as
    ActionFormer and OpenTAD place them. Rescaled rule (csv): row k of N stands for the
    k-th N-th of the frames the snippets covered, centre floor((k + 0.5) * F / N).
    docs/features.md lists each published set's snippet, stride and fps.

    A video whose row count does not fit its frame count at the stated stride (from
    --video-info), or whose file is unreadable, is one error line; the other videos
    are still imported (exit 1), nothing half-written.
    """
    from vidseg_cli.api.import_features import Options, load
    from vidseg_cli.errors import InputError

    opts = Options(layout=layout, snippet=snippet, stride=stride, rescaled=rescaled, fps=fps,
                   video_info=video_info, with_sources=list(with_sources), strip_prefix=strip_prefix, backbone=backbone,
                   stream=stream, command=command_line())
    try:
        importer = load(opts)
        entries = [e for src in sources for e in importer.entries(src)]
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))
    outputs = resolve_outputs(STAGE, [e.name for e in entries], out, "features",
                              ids=[e.video_id for e in entries])
    work = [Job({"community-features": e.parts[0][0], "video": e.name}, {"features": o})
            for e, o in zip(entries, outputs)]
    res = run_batch(STAGE, work, lambda job: importer.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=jobs, quiet=quiet)
    finish(STAGE, res, len(work), json_out, {"results": res.results}, quiet=quiet)
