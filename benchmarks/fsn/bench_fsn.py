"""FSN stages: extract-features throughput per backbone, optical flow speed, localize cost.

- extract-features, each backbone at full size (random weights, no download): snippets per
  second of `FeatureExtractor.run` on a frames file, against the bare `forward_features` of
  the same inputs already in memory (the ratio is the cost of reading, preparing and writing;
  target <= 1.5). RGB 224x224 frames for the 2D networks, 16-frame clips for c3d.
- optical flow: TV-L1 against Farneback, frames per second on the same 128x96 frames (the
  ratio is how much slower TV-L1 is; informational, target "> 1").
- localize (fsn): the whole stage (read features, slide the FSN, grouping over 10
  thresholds, NMS, write two files) on a 1-hour video (25 fps, 5-frame snippets, 512-d
  features), as a fraction of the video's duration (target <= 0.01).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _frames_file(path: Path, n: int, h: int, w: int) -> None:
    from vidseg_cli import store

    rng = np.random.default_rng(0)
    with store.FramesWriter(path, height=h, width=w, video_id="bench", fps=25.0) as fw:
        for t in range(n):
            fw.append(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), t / 25)


def _extract_figures(tmp: Path, quick: bool) -> list[dict]:
    import torch

    from vidseg_cli.api.extract_features import FeatureExtractor, Options
    from vidseg_cli.datasets.fsn_data import VideoFrames
    from vidseg_cli.models import MODELS

    snippets = 4 if quick else 16
    out = []
    for name, size in (("resnet18", 224), ("resnet50", 224), ("vgg16", 224), ("c3d", 112)):
        frames = tmp / f"{name}.frames.h5"
        _frames_file(frames, snippets * 5, size, size)
        torch.manual_seed(0)
        model = MODELS.build(name, **({} if name == "c3d" else {"num_classes": 0}))
        ex = FeatureExtractor(Options(weights=str(frames), batch_size=8, device="cpu",
                                      checkpoint_every=0),
                              model=model, source={"backbone": name, "stream": "rgb"})
        # warm-up (allocator, oneDNN primitives)
        ex.run({"frames": frames}, {"features": tmp / f"{name}.warm.h5"})
        t0 = time.perf_counter()
        res = ex.run({"frames": frames}, {"features": tmp / f"{name}.features.h5"}).to_json()
        ours = time.perf_counter() - t0
        v = VideoFrames(str(frames))
        from vidseg_cli.infer.features import snippet_center_frames

        c = snippet_center_frames(v.num_frames, 5, 5)
        batches = [ex.encoder.inputs(v, c[i:i + 8]) for i in range(0, len(c), 8)]
        v.close()
        t0 = time.perf_counter()
        for x in batches:
            ex.encoder.forward(x)
        bare = time.perf_counter() - t0
        out.append({"name": f"extract-features {name} vs bare forward", "ratio": round(ours / bare, 3),
                    "target": "<= 1.5", "ok": ours / bare <= 1.5,
                    "detail": {"snippets": res["snippets"], "snippets_per_s": round(res["snippets"] / ours, 2),
                               "bare_snippets_per_s": round(res["snippets"] / bare, 2),
                               "input": f"{size}x{size}" + (" x16" if name == "c3d" else ""),
                               "threads": torch.get_num_threads()}})
    return out


def _flow_figure(quick: bool) -> dict:
    from vidseg_cli.video.flow import FlowComputer

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96 + 8, 128 + 8, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(base[k % 8:k % 8 + 96, 0:128]) for k in range(6 if quick else 21)]
    fps = {}
    for m in ("tvl1", "farneback"):
        fc = FlowComputer(m)
        fc(frames[0], frames[1])
        t0 = time.perf_counter()
        for a, b in zip(frames[:-1], frames[1:]):
            fc(a, b)
        fps[m] = (len(frames) - 1) / (time.perf_counter() - t0)
    r = fps["farneback"] / fps["tvl1"]
    return {"name": "optical flow: TV-L1 time / Farneback time (128x96)", "ratio": round(r, 1), "target": "> 1",
            "ok": r > 1, "detail": {"tvl1_fps": round(fps["tvl1"], 2), "farneback_fps": round(fps["farneback"], 1)}}


def _localize_figure(tmp: Path, quick: bool) -> dict:
    import torch

    from vidseg_cli import store
    from vidseg_cli.api import localize
    from vidseg_cli.models import MODELS, save_checkpoint

    hours = 0.25 if quick else 1.0
    fps, snippet, D = 25.0, 5, 512
    T = int(hours * 3600 * fps)
    n = T // snippet
    rng = np.random.default_rng(0)
    # features that switch between a few patterns, so grouping has segments to find
    proto = rng.normal(size=(5, D)).astype(np.float32)
    lab = np.repeat(rng.integers(0, 5, n // 20 + 1), 20)[:n]
    feats = proto[lab] + 0.5 * rng.normal(size=(n, D)).astype(np.float32)
    fpath = tmp / "long.features.h5"
    store.write_features(fpath, feats, np.arange(n) * snippet + 2, video_id="long", num_frames=T, fps=fps,
                         attrs={"snippet": snippet, "stride": snippet, "backbone": "resnet18", "stream": "rgb"})
    torch.manual_seed(0)
    save_checkpoint(tmp / "fsn.ckpt", MODELS.build("fsn", in_features=D, num_classes=21), ["background"] + [
        f"c{i}" for i in range(20)])
    loc = localize.load(localize.Options(weights=str(tmp / "fsn.ckpt"), method="fsn", device="cpu"))
    t0 = time.perf_counter()
    res = loc.run({"features": str(fpath)}, {"detections": tmp / "long.detections.h5"})
    sec = time.perf_counter() - t0
    r = sec / (hours * 3600)
    return {"name": "localize (fsn) seconds per second of video", "ratio": round(r, 5), "target": "<= 0.01",
            "ok": r <= 0.01, "detail": {"video_hours": hours, "frames": T, "snippets": n, "seconds": round(sec, 2),
                                         "seconds_per_hour": round(sec / hours, 2), "detections": res.detections}}


def run(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        return [*_extract_figures(tmp, quick), _flow_figure(quick), _localize_figure(tmp, quick)]
