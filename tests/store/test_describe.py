"""`vidseg inspect`: plain numbers (never a numpy repr) and the name of every compression,
Blosc's compressor included."""

from __future__ import annotations

import json

import numpy as np

from tests.api.post_files import _frames, _labels, _probs, _scores
from vidseg_cli.store.describe import describe


def test_shares_are_plain_numbers(cli, tmp_path):
    labels = _labels(tmp_path / "l.labels.h5", np.zeros((3, 4, 4), np.uint8))
    scores = _scores(tmp_path / "s.scores.h5", _probs(3, 3, 4, 4))
    share = describe(labels)["summary"]["pixel_share"]
    assert share == {"background": 1.0} and type(share["background"]) is float
    assert all(type(x) is float for x in describe(scores)["summary"]["argmax_share"].values())
    for f in (labels, scores):
        res = cli("inspect", f)
        assert res.exit_code == 0 and "np." not in res.stdout
    assert "background=1" in cli("inspect", labels).stdout


def test_compression_is_named(cli, tmp_path):
    frames = _frames(tmp_path / "v.frames.h5", 3, 8, 8)  # the default frame codec: Blosc lz4
    rep = describe(frames)
    assert rep["datasets"]["frames"]["compression"] == "blosc/lz4"
    assert rep["datasets"]["timestamps"]["compression"] is None
    labels = _labels(tmp_path / "l.labels.h5", np.zeros((3, 4, 4), np.uint8))
    assert describe(labels)["datasets"]["labels"]["compression"] == "lzf"  # h5py's own names stay
    res = cli("inspect", "--json", frames)
    assert json.loads(res.stdout)["datasets"]["frames"]["compression"] == "blosc/lz4"
    assert "unknown" not in cli("inspect", frames).stdout


def test_jpeg_frames_are_described_as_decoded_and_as_stored(cli, tmp_path):
    from vidseg_cli import store

    p = tmp_path / "v.frames.h5"
    with store.FramesWriter(p, height=8, width=8, video_id="v", fps=25.0, codec="jpeg",
                            quality=80) as fw:
        for i in range(3):
            fw.append(np.full((8, 8, 3), 50 * i, np.uint8), i / 25)
    d = describe(p)["datasets"]["frames"]
    assert d["shape"] == [3, 8, 8, 3] and d["dtype"] == "uint8" and d["compression"] == "jpeg/q80"
    assert d["stored"]["codec"] == "jpeg" and d["stored"]["shape"] == [3]
    assert d["stored"]["bytes"] > 0 and d["stats"]["max"] == 100
    res = cli("inspect", p)
    assert res.exit_code == 0 and "jpeg/q80" in res.stdout
