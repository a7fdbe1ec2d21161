"""`vidseg extract-frames`: videos and frame folders to frames files."""

from __future__ import annotations

import re

import click

from vidseg_cli.cli.common import (
    fail,
    finish,
    jobs_for,
    jobs_option,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_outputs,
    run_batch,
    warn,
)
from vidseg_cli.cmdline import command_line


def _parse_size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise click.BadParameter(f"expected WxH with positive integers, e.g. 320x240, got {value!r}")
    return int(m.group(1)), int(m.group(2))


@click.command("extract-frames")
@click.argument("videos", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 file (one input) or folder (<video_id>.frames.h5 per input).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Resample to this frame rate by timestamps (default: the source's).")
@click.option("--size", callback=_parse_size, metavar="WxH", default=None,
              help="Resize every frame to W x H pixels.")
@click.option("--short-side", type=click.IntRange(1), default=None,
              help="Resize so the shorter side is N pixels, keeping the aspect ratio.")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="First second to keep.")
@click.option("--end", type=click.FloatRange(min=0), default=None,
              help="Stop before this second (default: the end).")
@click.option("--folder-fps", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Frame rate assumed for folders of JPEG/PNG frames.")
@click.option("--codec", type=click.Choice(["jpeg", "lz4", "lzf", "gzip", "none"]),
              default="jpeg", show_default=True,
              help="Frame storage: jpeg (one JPEG per frame, about the size of a folder of "
                   "JPEGs), or lossless: lz4 (Blosc, ~14x larger), lzf, gzip (smaller, slower), "
                   "none.")
@click.option("--quality", type=click.IntRange(1, 100), default=None,
              help="JPEG quality, 1..100 [default: 89, within 1.2x the size of ffmpeg's -q:v 2 "
                   "JPEGs at over 38 dB PSNR]; only with --codec jpeg.")
@jobs_option
@overwrite_option
@quiet_option
@json_option
def extract_frames(videos, out, fps, size, short_side, start, end, folder_fps, codec, quality,
                   jobs, overwrite, quiet, json_out):
    """Decode VIDEOS (mp4/avi/mkv/..., or folders of JPEG/PNG frames as in J-HMDB and
    DAVIS) into frames files: one JPEG per frame by default (read back as RGB uint8
    (T,H,W,3); --codec lz4 for lossless frames), with each frame's timestamp and the
    source's fps and size.

    Frames stream to disk, so memory stays flat in video length. An output that exists
    is skipped unless --overwrite.
    """
    if size is not None and short_side is not None:
        fail("extract-frames", "--size and --short-side are exclusive; give one")
    if quality is not None and codec != "jpeg":
        fail("extract-frames", f"--quality is for --codec jpeg; --codec {codec} is lossless")
    from vidseg_cli.api import extract_frames as api

    outputs = resolve_outputs("extract-frames", list(videos), out, "frames")
    runner = api.load(api.Options(fps=fps, size=size, short_side=short_side, start=start,
                                  end=end, folder_fps=folder_fps, codec=codec,
                                  **({"quality": quality} if quality is not None else {}),
                                  command=command_line(),
                                  on_warning=lambda line: warn("extract-frames", line)))
    res = run_batch("extract-frames", jobs_for(videos, outputs, "video", "frames"),
                    lambda job: runner.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=jobs, quiet=quiet)
    finish("extract-frames", res, len(videos), json_out,
           {"results": res.results}, quiet=quiet)
