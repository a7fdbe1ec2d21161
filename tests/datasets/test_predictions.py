"""Reading predictions with --time-base timestamps: the frames file is found through the
provenance, and one rewritten since (another uid) is an error naming both files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.api.post_files import _frames
from vidseg_cli import store
from vidseg_cli.datasets.predictions import read_predictions
from vidseg_cli.errors import InputError


def _chain(tmp_path):
    frames = _frames(tmp_path / "v.frames.h5", 10, 8, 8)
    dets = tmp_path / "v.detections.h5"
    store.write_detections(dets, np.array([[2.0, 6.0]]), np.array([1]), np.array([0.9]),
                           class_names=["background", "jump"], video_id="v", num_frames=10,
                           fps=25.0, inputs=[frames])
    return frames, dets


def test_timestamps_come_from_the_recorded_frames_file(tmp_path):
    _, dets = _chain(tmp_path)
    pred = read_predictions("detections", [str(dets)], "timestamps")
    np.testing.assert_allclose(pred.segments, [[2 / 25, 6 / 25]])
    assert not pred.issues


def test_a_rewritten_frames_file_is_an_error_naming_both(tmp_path, cli):
    frames, dets = _chain(tmp_path)
    _frames(frames, 10, 8, 8)  # extracted again: same path, another uid
    with pytest.raises(InputError) as e:
        read_predictions("detections", [str(dets)], "timestamps")
    msg = str(e.value)
    assert msg.startswith(f"{dets}: made from {frames}, which has been rewritten since")
    assert "--time-base fps" in msg
    np.testing.assert_allclose(read_predictions("detections", [str(dets)], "fps").segments,
                               [[2 / 25, 6 / 25]])
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"v": {"subset": "test", "duration": 0.4, "annotations": [
        {"segment": [0.08, 0.24], "label": "jump"}]}}}))
    res = cli("evaluate", dets, "--gt", gt, "--time-base", "timestamps")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and f"made from {frames}" in res.stderr
