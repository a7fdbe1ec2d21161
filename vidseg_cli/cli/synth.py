"""`vidseg synth`: a seeded, labelled synthetic set of untrimmed action videos."""

from __future__ import annotations

import re
from pathlib import Path

import click

from vidseg_cli.cli.common import (
    Job,
    fail,
    finish,
    jobs_option,
    json_option,
    notice,
    quiet_option,
    run_batch,
    warn,
)
from vidseg_cli.cmdline import command_line

STAGE = "synth"


def _parse_size(ctx, param, value):
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter(f"expected WxH, e.g. 128x96, got {value!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 16 or h < 16 or w % 2 or h % 2:
        # mp4v (MPEG-4 part 2) silently drops an odd last row or column.
        raise click.BadParameter(f"width and height must be even and at least 16, got {w}x{h}")
    return w, h


def _parse_range(ctx, param, value):
    """'S' or 'MIN,MAX' (seconds) -> (min, max)."""
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 0 < parts[0] <= parts[1]:
        raise click.BadParameter(f"expected seconds S or a range MIN,MAX with 0 < MIN <= MAX, got {value!r}")
    return parts[0], parts[1]


def _prepare_folder(out: Path, overwrite: bool, keep: set[str]) -> None:
    """Refuse a non-empty folder unless --overwrite; with it, drop our own outputs that the
    new set will not replace, so the folder never mixes two sets."""
    if out.exists() and not out.is_dir():
        fail(STAGE, f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            fail(STAGE, f"{out}: folder is not empty (use --overwrite to replace a synthetic set there)")
        for p in (out / "videos").glob("synth_*.mp4"):
            if p.stem not in keep:
                p.unlink()
        for p in (out / "labels").glob("synth_*.labels.h5"):
            if p.name[: -len(".labels.h5")] not in keep:
                p.unlink()
        for p in (out / "annotations").glob("*.txt"):
            if re.fullmatch(r"\w+_(train|test)\.txt|detclasslist\.txt", p.name):
                p.unlink()
    try:
        for sub in ("videos", "labels", "annotations"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(STAGE, f"{out}: cannot create output folder ({e.strerror})")


@click.command("synth")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: videos/, labels/, annotations/, gt.json, synth.json.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed and options give the same set.")
@click.option("--num-classes", type=click.IntRange(1, 8), default=4, show_default=True,
              help="K action classes, the first K of: SlideHorizontal, BounceVertical, Orbit, "
                   "Pulse, SlideVertical, Spin, Zigzag, Shake.")
@click.option("--train", "num_train", type=click.IntRange(0), default=32, show_default=True,
              help="Training videos (synth_train_NNNN, subset 'training').")
@click.option("--test", "num_test", type=click.IntRange(0), default=16, show_default=True,
              help="Test videos (synth_test_NNNN, subset 'testing'; --subset test selects them in evaluate).")
@click.option("--size", default="128x96", show_default=True, callback=_parse_size, metavar="WxH",
              help="Frame size in pixels (even numbers).")
@click.option("--fps", type=click.FloatRange(min=1.0), default=10.0, show_default=True,
              help="Frame rate. Motion is defined in seconds, so it looks the same at any rate.")
@click.option("--speed", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Motion tempo: 0.25 plays every action 4x slower (the same path, a quarter "
                   "as far per second), for models whose class map is coarse in time "
                   "(3DFCN-8s: one cell per 4 frames; docs/segment3d.md).")
@click.option("--duration", default="15,25", show_default=True, callback=_parse_range,
              metavar="S|MIN,MAX", help="Video length in seconds, drawn per video from MIN..MAX.")
@click.option("--action-length", default="2.4,5", show_default=True, callback=_parse_range,
              metavar="S|MIN,MAX",
              help="Action length in seconds (2.4 s = 24 frames at 10 fps: a 16-frame window fits).")
@click.option("--max-actors", type=click.IntRange(1), default=2, show_default=True,
              help="Actors that may act at the same time.")
@click.option("--max-distractors", type=click.IntRange(0), default=1, show_default=True,
              help="Still objects per video, labelled background.")
@click.option("--noise", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Pixel noise standard deviation (0..255 scale).")
@click.option("--jitter", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Camera shake: largest shift of the frame, in pixels.")
@click.option("--appearance", type=click.Choice(["random", "class"]), default="random", show_default=True,
              help="random: an actor's look says nothing about its class (only its motion "
                   "does); class: its shape, hue band and texture follow the class too, as "
                   "scene and objects do in real footage (for appearance-only models).")
@click.option("--classes-per-video", type=click.IntRange(0, 8), default=0, show_default=True,
              help="0: a video's actions cycle through all K classes; N: through N classes drawn "
                   "per video (1: one class per video, as in most THUMOS14 videos, for weakly "
                   "supervised training on video labels).")
@click.option("--overwrite", is_flag=True,
              help="Write into a non-empty folder, replacing a synthetic set there.")
@jobs_option
@quiet_option
@json_option
def synth(out, seed, num_classes, num_train, num_test, size, fps, speed, duration, action_length,
          max_actors, max_distractors, noise, jitter, appearance, classes_per_video, overwrite, jobs,
          quiet, json_out):
    """Generate a labelled synthetic set of untrimmed action videos in folder OUT.

    Each video: a textured background, a shaky camera, pixel noise, still distractors, and
    actors whose motion pattern over several frames is the action class (their shape,
    colour, size and texture say nothing about it, unless --appearance class). Actors appear, may stand still, act,
    may stand still again, and vanish; actions fill about half of each video.

    \b
    OUT/videos/<id>.mp4             mp4v, --size, --fps
    OUT/labels/<id>.labels.h5       class of every pixel of every frame (0 = background;
                                    still actors are background)
    OUT/gt.json                     ActivityNet-style segments in seconds
    OUT/annotations/<Class>_<train|test>.txt, detclasslist.txt   THUMOS14-style
    OUT/synth.json                  generator version and every parameter

    The defaults (48 videos of 15-25 s at 128x96, 10 fps, 4 classes) generate in well
    under a minute and train small models on a CPU in minutes. The same seed and options
    give the same labels and ground truth, whatever --jobs.
    """
    from vidseg_cli.datasets.synth.config import SynthConfig
    from vidseg_cli.datasets.synth.sample import video_id
    from vidseg_cli.datasets.synth.write import (
        actionless_note,
        generate_video,
        set_params,
        write_set_files,
    )

    try:
        cfg = SynthConfig(
            width=size[0], height=size[1], fps=fps, duration=duration, num_classes=num_classes,
            max_actors=max_actors, max_distractors=max_distractors, noise=noise, jitter=jitter,
            action_length=action_length, appearance=appearance,
            classes_per_video=classes_per_video, speed=speed,
        )
    except ValueError as e:
        fail(STAGE, f"invalid options: {e}")
    if num_train + num_test == 0:
        fail(STAGE, "nothing to generate: give --train and/or --test a positive count")

    plan = [("train", i) for i in range(num_train)] + [("test", i) for i in range(num_test)]
    ids = {video_id(s, i) for s, i in plan}
    outdir = Path(out)
    _prepare_folder(outdir, overwrite, ids)
    command = command_line()

    items = [Job({"seed": video_id(s, i)}, {"video": outdir / "videos" / f"{video_id(s, i)}.mp4"})
             for s, i in plan]
    by_id = {video_id(s, i): (s, i) for s, i in plan}
    res = run_batch(
        STAGE, items,
        lambda job: generate_video(cfg, seed, *by_id[job.source], outdir, command=command),
        overwrite=True, jobs=jobs, quiet=quiet,
    )
    summary = {"output": str(outdir), "seed": seed}
    if not res.failed:
        params = set_params(cfg, seed, num_train, num_test, command=command)
        write_set_files(outdir, cfg, res.results, params)
        n_actions = sum(len(v["segments"]) for v in res.results)
        summary["actions"] = n_actions
        notice(STAGE, f"{outdir}: {num_train} training + {num_test} test videos, "
                      f"{n_actions} actions of {num_classes} classes", quiet)
        note = actionless_note(cfg, res.results)
        if note:
            warn(STAGE, note)
    finish(STAGE, res, len(items), json_out, summary, quiet=quiet)
