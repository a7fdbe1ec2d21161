"""3DFCN context: mirrored frames/rows/columns around clips (training) and videos
(segment-3d), so every labelled pixel is a class-map window centre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_cli.api.segment3d import Options, Segment3D
from vidseg_cli.datasets.segment_data import (
    IGNORE,
    ClipSpec,
    sample_clip,
)
from vidseg_cli.models import MODELS
from vidseg_cli.models.preprocess import Preprocess, pad_reflect, reflect_index

torch.set_num_threads(1)
CLASSES = ["background", "a"]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("pad", [0, 1, 5, 20])
def test_reflect_index_is_numpy_reflect_padding(n, pad):
    a = np.arange(n) * 10
    want = np.pad(a, pad, mode="reflect") if n > 1 else np.full(n + 2 * pad, a[0])
    assert np.array_equal(a[reflect_index(np.arange(-pad, n + pad), n)], want)


def test_pad_reflect_pads_time_rows_and_columns():
    x = np.random.default_rng(0).integers(0, 255, (4, 5, 6, 3), dtype=np.uint8)
    want = np.pad(x, ((3, 3), (2, 2), (4, 4), (0, 0)), mode="reflect")
    assert np.array_equal(pad_reflect(x, (3, 2, 4)), want)


def _video(t=30, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    labels = np.zeros((t, h, w), np.uint8)
    labels[10:20, 10:30, 20:40] = 1
    return frames, labels


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_context_surrounds_the_same_labelled_clip(bias):
    frames, labels = _video()
    base = dict(clip_len=8, crop=24, action_bias=bias, flip=False)
    with_context = Preprocess((0.0,) * 3, (1.0,) * 3, context=(3, 5, 7))
    for seed in range(6):
        x0, y0 = sample_clip(frames, labels, ClipSpec(**base), np.random.default_rng(seed))
        x1, y1 = sample_clip(frames, labels, ClipSpec(**base, preprocess=with_context), np.random.default_rng(seed))
        assert x1.shape == (14, 34, 38, 3) and y1.shape == (14, 34, 38)
        assert np.array_equal(x1[3:11, 5:29, 7:31], x0)
        assert np.array_equal(y1[3:11, 5:29, 7:31], y0)
        ring = np.ones(y1.shape, bool)
        ring[3:11, 5:29, 7:31] = False
        assert (y1[ring] == IGNORE).all()


def test_context_frames_come_from_the_video_mirrored_at_its_ends():
    frames, labels = _video(t=10)
    spec = ClipSpec(clip_len=10, crop=None, preprocess=Preprocess((0.0,) * 3, (1.0,) * 3, context=(4, 0, 0)),
                    flip=False)
    x, y = sample_clip(frames, labels, spec, np.random.default_rng(0))
    assert np.array_equal(x, frames[reflect_index(np.arange(-4, 14), 10)])
    assert (y[:4] == IGNORE).all() and (y[14:] == IGNORE).all() and np.array_equal(y[4:14], labels)


def test_segment3d_with_context_runs_the_mirrored_video_and_crops():
    torch.manual_seed(0)
    m = MODELS.build("3dfcn-8s", num_classes=2, width=1 / 16).eval()
    pre = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 0}
    with_ctx = Segment3D(m, CLASSES, {**pre, "context": [8, 56, 56]},
                         Options(model="3dfcn-8s", weights=""), torch.device("cpu"))
    plain = Segment3D(m, CLASSES, pre, Options(model="3dfcn-8s", weights=""), torch.device("cpu"))
    frames = np.random.default_rng(1).integers(0, 256, (12, 40, 48, 3), dtype=np.uint8)
    # Smaller than one 16 x 112 x 112 window: only the context makes it a valid input.
    with pytest.raises(Exception, match="minimum input"):
        plain.predict(frames)
    got = with_ctx.predict(frames)
    want = plain.predict(pad_reflect(frames, (8, 56, 56)))[8:20, :, 56:96, 56:104]
    assert got.shape == (12, 2, 40, 48)
    np.testing.assert_allclose(got, want, atol=1e-5)
