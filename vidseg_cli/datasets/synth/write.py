"""Writing a synthetic set: each video's mp4 and labels file, the ActivityNet-style
gt.json, THUMOS14-style annotation files and synth.json (what makes the same set again)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_cli import __version__, store
from vidseg_cli.core.fs import write_text
from vidseg_cli.datasets.synth.config import SUBSETS, SYNTH_VERSION, SynthConfig
from vidseg_cli.datasets.synth.render import iter_frames
from vidseg_cli.datasets.synth.sample import sample_video
from vidseg_cli.video.write import write_mp4


def seconds(frame: int | float, fps: float) -> float:
    """A frame boundary in seconds, rounded so JSON and txt files carry the same number."""
    return round(float(frame) / fps, 6)



def generate_video(
    cfg: SynthConfig, seed: int, subset: str, index: int, out_dir: str | os.PathLike,
    command: str | None = None,
) -> dict[str, Any]:
    """Render one video to `out_dir/videos/<id>.mp4` and `out_dir/labels/<id>.labels.h5`,
    frame by frame; return its ground-truth entry (see `ground_truth`)."""
    spec = sample_video(cfg, seed, subset, index)
    out = Path(out_dir)
    labels = np.zeros((spec.num_frames, cfg.height, cfg.width), np.uint8)  # (T,H,W), the one video

    def frames() -> Iterator[np.ndarray]:
        for t, (rgb, lab) in enumerate(iter_frames(spec)):
            labels[t] = lab
            yield rgb

    write_mp4(out / "videos" / f"{spec.video_id}.mp4", frames(), cfg.width, cfg.height, cfg.fps)
    store.write_labels(
        out / "labels" / store.output_name(spec.video_id, "labels"), labels,
        video_id=spec.video_id, num_frames=spec.num_frames, fps=cfg.fps,
        class_names=cfg.class_names, command=command,
        attrs={"synth_version": SYNTH_VERSION, "synth_seed": int(seed), "subset": SUBSETS[subset]},
    )
    return {
        "video_id": spec.video_id,
        "subset": SUBSETS[subset],
        "num_frames": spec.num_frames,
        "segments": [[label, start, end] for label, start, end in spec.segments],
    }


def actionless_note(cfg: SynthConfig, videos: Sequence[dict[str, Any]]) -> str | None:
    """A line saying how many `videos` hold no action, and why. A video's first action
    starts after a gap of up to `gap_length[1]`, with up to 1 s of stillness on either side
    (sample.sample_timeline), so shorter videos may have no room for one; longer ones lack
    one only when no action path fits the frame (sample.place)."""
    empty = [v["video_id"] for v in videos if not v["segments"]]
    if not empty:
        return None
    need = cfg.gap_length[1] + 2.0 + cfg.action_length[1]
    if cfg.duration[0] < need:
        why = (f"videos of {cfg.duration[0]:g}-{cfg.duration[1]:g} s leave too little room for "
               f"actions of {cfg.action_length[0]:g}-{cfg.action_length[1]:g} s; a --duration of "
               f"at least {need:g} s gives every video one (or shorten --action-length)")
    else:
        why = f"their actions' paths did not fit in {cfg.width}x{cfg.height} frames; give a larger --size"
    return f"{len(empty)} of {len(videos)} videos hold no action (e.g. {empty[0]}): {why}"


def ground_truth(cfg: SynthConfig, videos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """ActivityNet-style ground truth; `taxonomy[i]` is label index i+1."""
    names = cfg.class_names
    database = {}
    for v in videos:
        database[v["video_id"]] = {
            "subset": v["subset"],
            "duration": seconds(v["num_frames"], cfg.fps),
            "fps": cfg.fps,
            "num_frames": v["num_frames"],
            "resolution": f"{cfg.width}x{cfg.height}",
            "annotations": [
                {"segment": [seconds(s, cfg.fps), seconds(e, cfg.fps)], "label": names[c]}
                for c, s, e in v["segments"]
            ],
        }
    return {"version": f"vidseg-synth-{SYNTH_VERSION}", "taxonomy": names[1:], "database": database}


def thumos_files(cfg: SynthConfig, videos: Sequence[dict[str, Any]]) -> dict[str, str]:
    """THUMOS14-style annotation files, name -> text: `<Class>_<train|test>.txt` (one line
    `video start end` per action, seconds) for every class and subset, empty ones included,
    and `detclasslist.txt` (`<1-based index> <Class>`)."""
    names = cfg.class_names
    inverse = {v: k for k, v in SUBSETS.items()}
    files = {"detclasslist.txt": "".join(f"{i} {n}\n" for i, n in enumerate(names[1:], 1))}
    for subset in SUBSETS:
        for c, name in enumerate(names[1:], 1):
            lines = [
                f"{v['video_id']}  {seconds(s, cfg.fps)!r} {seconds(e, cfg.fps)!r}\n"
                for v in sorted(videos, key=lambda v: v["video_id"]) if inverse[v["subset"]] == subset
                for cc, s, e in v["segments"] if cc == c
            ]
            files[f"{name}_{subset}.txt"] = "".join(lines)
    return files



def write_set_files(
    out_dir: str | os.PathLike, cfg: SynthConfig, videos: Sequence[dict[str, Any]], params: dict
) -> None:
    """gt.json, annotations/*.txt and synth.json for generated `videos`."""
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    write_text(out / "gt.json", json.dumps(ground_truth(cfg, videos), indent=2) + "\n")
    for name, text in thumos_files(cfg, videos).items():
        write_text(out / "annotations" / name, text)
    write_text(out / "synth.json", json.dumps(params, indent=2) + "\n")


def set_params(cfg: SynthConfig, seed: int, num_train: int, num_test: int,
               command: str | None = None) -> dict[str, Any]:
    """What synth.json records: enough to make the same set again."""
    return {
        "generator": "vidseg-synth",
        "synth_version": SYNTH_VERSION,
        "vidseg_version": __version__,
        "command": command,
        "seed": int(seed),
        "train": int(num_train),
        "test": int(num_test),
        "config": cfg.to_dict(),
        "class_names": cfg.class_names,
        "subsets": dict(SUBSETS),
        "layout": {
            "videos": "videos/<video_id>.mp4 (mp4v, RGB)",
            "labels": "labels/<video_id>.labels.h5 (labels kind: (T,H,W) uint8, 0 = background)",
            "gt": "gt.json (ActivityNet style, seconds; segment [a/fps, b/fps] for frames [a, b))",
            "annotations": "annotations/<Class>_<train|test>.txt, annotations/detclasslist.txt",
        },
    }
