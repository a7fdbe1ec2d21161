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
