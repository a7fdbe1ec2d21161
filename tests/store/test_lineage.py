"""The frames file a file was made from, through provenance inputs (store/lineage.py)."""

from __future__ import annotations

import numpy as np

from vidseg_cli import store
from vidseg_cli.store.lineage import from_frames


def _frames(path, t=3):
    store.write(path, "frames", {"frames": np.zeros((t, 4, 6, 3), np.uint8),
                                 "timestamps": np.arange(t) / 5.0},
                video_id="v", num_frames=t, fps=5.0, attrs={"source_size": [12, 8]}, command="t")
    return path


def _labels(path, inputs):
    store.write_labels(path, np.zeros((3, 4, 6), np.uint8), video_id="v", num_frames=3, fps=5.0,
                       class_names=["background", "x"], inputs=inputs, command="t")
    with store.open_record(path) as rec:
        return rec.attrs


def test_followed_through_intermediate_files_and_checked_by_uid(tmp_path):
    fr = _frames(tmp_path / "v.frames.h5")
    mid = tmp_path / "v.mid.labels.h5"
    _labels(mid, [fr])
    attrs = _labels(tmp_path / "v.labels.h5", [mid])
    assert from_frames(attrs, lambda f, a: (f["frames"].shape, a["source_size"])) == ((3, 4, 6, 3), [12, 8])
    _frames(fr)  # re-extracted: a new uid, not the frames these came from
    assert from_frames(attrs, lambda f, a: a["source_size"]) is None
    assert from_frames({"inputs": [{"path": str(tmp_path / "gone.h5"), "uid": None}]}, lambda f, a: 1) is None
