"""Channels-last against the default layout for the 3D models on a CPU
(models/common.conv3d_layout): one training step of each synthetic recipe (its batch and
clip shape, weighted loss, backward, Adam) and whole-video inference on 40 frames of
192x256, with the conversion switched off and on, alternately in one process. Figure:
default time / channels-last time (> 1: channels-last is faster)."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from unittest import mock

MODULES = ("vidseg_cli.models.fcn3d", "vidseg_cli.models.r2plus1d", "vidseg_cli.models.c3d")


@contextmanager
def _layout(channels_last: bool):
    if channels_last:
        yield
        return
    with mock.patch(f"{MODULES[0]}.conv3d_layout", lambda x: x), \
            mock.patch(f"{MODULES[1]}.conv3d_layout", lambda x: x), \
            mock.patch(f"{MODULES[2]}.conv3d_layout", lambda x: x):
        yield


def _cases(model_name: str, quick: bool):
    import torch

    from vidseg_cli.train.segment import (
        HALF_WINDOW,
        build_model,
        class_weight_vector,
        get_recipe,
        weighted_cross_entropy,
    )

    torch.manual_seed(0)
    r = get_recipe(model_name, "synthetic")
    m = build_model(model_name, ["background", "action"], r)
    t = r.clip_len + (2 * HALF_WINDOW[0] if model_name != "sep3d" else 0)
    side = r.crop + (2 * HALF_WINDOW[1] if model_name != "sep3d" else 0)
    x = torch.randn(r.batch_size, 3, t, side, side)
    y = torch.randint(0, 2, (r.batch_size, t, side, side))
    w = class_weight_vector(2, r.class_weights)
    opt = torch.optim.Adam(m.parameters(), 1e-5)
    video = torch.randn(1, 3, 40 if not quick else 24, 192, 256)

    def train_step():
        m.train()
        opt.zero_grad()
        weighted_cross_entropy(m(x), y, w).backward()
        opt.step()

    def infer():
        m.eval()
        with torch.no_grad():
            m(video)

    return {"training step": train_step, "inference, 40x192x256": infer}


def run(quick: bool) -> list[dict]:
    figures = []
    repeats = 2 if quick else 5
    for model_name in ("3dfcn-8s", "sep3d"):
        for what, fn in _cases(model_name, quick).items():
            times: dict[bool, list[float]] = {False: [], True: []}
            for cl in (False, True):  # warm-up of both paths
                with _layout(cl):
                    fn()
            for _ in range(repeats):
                for cl in (False, True):
                    with _layout(cl):
                        t0 = time.perf_counter()
                        fn()
                        times[cl].append(time.perf_counter() - t0)
            base, fast = statistics.median(times[False]), statistics.median(times[True])
            figures.append({
                "name": f"{model_name} {what}: default / channels-last time",
                "ratio": base / fast, "target": ">= 1.0", "ok": base / fast >= 1.0,
                "detail": {"default_s": round(base, 4), "channels_last_s": round(fast, 4),
                           "repeats": repeats, "recipe": "synthetic"},
            })
    return figures
