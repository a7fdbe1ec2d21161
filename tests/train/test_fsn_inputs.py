"""The inputs of train backbone / fsn / wfsn are checked before a run starts: a file pairs
with the ground truth by its video_id, one that cannot be read (a newer schema) is named,
and a non-finite feature is one line naming the file and the first bad snippet; the run
folder is left empty."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.api.post_files import _frames
from vidseg_cli import store
from vidseg_cli.datasets.fsn_data import expand_inputs


def _inputs(tmp_path, bad_value):
    rng = np.random.default_rng(0)
    files = []
    for v in ("a", "b"):
        f = rng.normal(size=(20, 6)).astype(np.float32)
        if v == "b":
            f[3, 2] = bad_value
            f[7, 0] = bad_value
        path = tmp_path / f"{v}.features.h5"
        store.write_features(path, f, np.arange(20) * 5 + 2, video_id=v, num_frames=100, fps=10.0,
                             attrs={"backbone": "x", "stream": "rgb", "snippet": 5})
        files.append(path)
    gt = {v: {"subset": "training", "duration": 10.0,
              "annotations": [{"segment": [2.0, 6.0], "label": "a"}]} for v in ("a", "b")}
    (tmp_path / "gt.json").write_text(json.dumps({"version": "1", "database": gt}))
    return files


@pytest.mark.parametrize("recipe", ["fsn", "wfsn"])
@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_features_are_refused_before_the_run(cli, tmp_path, recipe, bad_value):
    files = _inputs(tmp_path, bad_value)
    run = tmp_path / "run"
    res = cli("train", recipe, *files, "--gt", tmp_path / "gt.json", "--epochs", "1",
              "--steps-per-epoch", "2", "-o", run)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"vidseg train {recipe}: error: {files[1]}: snippet 3 (centre frame 17) "
                                 f"holds {bad_value} (2 of 20 snippets are not finite)")
    assert not run.exists()  # no config.json, no folder


def test_a_newer_schema_frames_file_is_named_not_the_ground_truth(cli, tmp_path):
    frames = _frames(tmp_path / "clip.frames.h5", 4, 16, 16, video_id="v")
    assert expand_inputs([tmp_path], "frames") == {"v": str(frames)}  # its video_id, not its name
    with h5py.File(frames, "a") as f:
        f.attrs["vidseg_schema"] = 99
    gt = {"v": {"subset": "training", "duration": 0.16,
                "annotations": [{"segment": [0.0, 0.1], "label": "a"}]}}
    (tmp_path / "gt.json").write_text(json.dumps({"version": "1", "database": gt}))
    run = tmp_path / "run"
    res = cli("train", "backbone", frames, "--gt", tmp_path / "gt.json", "--epochs", "1", "-o", run)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"vidseg train backbone: error: {frames}: schema 99 is newer than")
    assert not run.exists()


def test_frames_of_another_size_are_named_before_the_run(cli, tmp_path):
    paths = [_frames(tmp_path / f"{v}.frames.h5", 6, h, w, video_id=v)
             for v, h, w in (("a", 16, 16), ("b", 16, 16), ("c", 24, 32))]
    gt = {v: {"subset": "training", "duration": 0.6,
              "annotations": [{"segment": [0.0, 0.3], "label": "a"}]} for v in "abc"}
    (tmp_path / "gt.json").write_text(json.dumps({"version": "1", "database": gt}))
    run = tmp_path / "run"
    res = cli("train", "backbone", *paths, "--gt", tmp_path / "gt.json", "--epochs", "1", "-o", run)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"vidseg train backbone: error: {paths[2]}: frames are 32x24, "
                                 "most training videos' 16x16")
    assert not run.exists()
