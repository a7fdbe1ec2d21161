"""The HDF5 contract: round trips per kind, validation errors, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.store import SCHEMA_VERSION, StoreError

CLASSES = ["background", "jump", "run"]
META = dict(video_id="v1", num_frames=4, fps=25.0)


def test_roundtrip_every_small_kind(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random((4, 3, 5, 6)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    store.write_scores(tmp_path / "s.h5", p, class_names=CLASSES, attrs={"spatial_stride": 8}, **META)
    rec = store.read_scores(tmp_path / "s.h5")
    np.testing.assert_array_equal(rec["probs"], p)
    assert rec.class_names == CLASSES and rec.attrs["spatial_stride"] == 8 and rec.num_frames == 4

    store.write_frame_scores(tmp_path / "f.h5", p[:, :, 0, 0], class_names=CLASSES, **META)
    assert store.read_frame_scores(tmp_path / "f.h5")["probs"].shape == (4, 3)

    lab = rng.integers(0, 3, (4, 5, 6))
    store.write_labels(tmp_path / "l.h5", lab, class_names=CLASSES, **META)
    np.testing.assert_array_equal(store.read_labels(tmp_path / "l.h5")["labels"], lab)

    seg = np.array([[0, 10], [5, 20]], float)
    store.write_proposals(tmp_path / "p.h5", seg, [0.9, 0.1], **META)
    store.write_detections(tmp_path / "d.h5", seg, [1, 2], [0.9, 0.1], class_names=CLASSES, **META)
    d = store.read_detections(tmp_path / "d.h5")
    np.testing.assert_array_equal(d["segments"], seg)
    assert d["labels"].tolist() == [1, 2]

    store.write_features(tmp_path / "x.h5", rng.random((3, 8)), [2, 7, 12], **META)
    assert store.read_features(tmp_path / "x.h5")["centers"].tolist() == [2, 7, 12]

    store.write_hmm(tmp_path / "h.h5", [0.5, 0.25, 0.25], np.full((3, 3), 1 / 3), CLASSES)
    assert store.read_hmm(tmp_path / "h.h5")["transition"].shape == (3, 3)


def test_empty_detections_are_valid(tmp_path):
    store.write_detections(tmp_path / "d.h5", np.zeros((0, 2)), [], [], class_names=CLASSES, **META)
    assert store.read_detections(tmp_path / "d.h5")["segments"].shape == (0, 2)


def test_provenance_attributes(tmp_path):
    store.write_proposals(tmp_path / "a.h5", [[0, 16]], [1.0], **META)
    store.write_proposals(tmp_path / "b.h5", [[0, 16]], [1.0], inputs=[tmp_path / "a.h5"], **META)
    a, b = store.read_proposals(tmp_path / "a.h5"), store.read_proposals(tmp_path / "b.h5")
    for attr in store.base.REQUIRED_ATTRS:
        assert attr in b.attrs
    assert b.attrs["vidseg_schema"] == SCHEMA_VERSION
    assert b.attrs["inputs"] == [{"path": str((tmp_path / "a.h5").resolve()), "uid": a.uid}]
    assert a.uid != b.uid


def _expect(path, kind, *fragments):
    with pytest.raises(StoreError) as e:
        store.read(path, kind)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg


def test_wrong_kind(tmp_path):
    store.write_proposals(tmp_path / "p.h5", [[0, 16]], [1.0], **META)
    _expect(tmp_path / "p.h5", "detections", "expected a detections file, found a proposals file")


def test_newer_schema_refused(tmp_path):
    store.write_proposals(tmp_path / "p.h5", [[0, 16]], [1.0], **META)
    with h5py.File(tmp_path / "p.h5", "a") as f:
        f.attrs["vidseg_schema"] = SCHEMA_VERSION + 1
    _expect(tmp_path / "p.h5", "proposals", f"schema {SCHEMA_VERSION + 1} is newer")


def test_missing_dataset(tmp_path):
    store.write_detections(tmp_path / "d.h5", [[0, 4]], [1], [0.5], class_names=CLASSES, **META)
    with h5py.File(tmp_path / "d.h5", "a") as f:
        del f["scores"]
    _expect(tmp_path / "d.h5", "detections", "missing dataset 'scores'")


def test_wrong_shape_names_expected_and_found(tmp_path):
    store.write_frame_scores(tmp_path / "f.h5", np.ones((4, 3)) / 3, class_names=CLASSES, **META)
    with h5py.File(tmp_path / "f.h5", "a") as f:
        del f["probs"]
        f["probs"] = np.ones((4, 2), np.float32)
    _expect(tmp_path / "f.h5", "frame_scores", "expected shape (T=4, C=3)", "found (4, 2)")


def test_frames_num_frames_must_match(tmp_path):
    with store.FramesWriter(tmp_path / "v.h5", height=4, width=5, video_id="v", fps=10) as w:
        for i in range(3):
            w.append(np.full((4, 5, 3), i, np.uint8), i / 10)
    with h5py.File(tmp_path / "v.h5", "a") as f:
        f.attrs["num_frames"] = 7
    _expect(tmp_path / "v.h5", "frames", "expected shape (T=7", "found (3, 4, 5, 3)")


def test_not_hdf5_and_missing(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    _expect(tmp_path / "x.h5", None, "not a readable HDF5 file")
    _expect(tmp_path / "nope.h5", None, "no such file")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["a"] = 1
    _expect(tmp_path / "plain.h5", None, "not a vidseg file")


def test_writer_rejects_bad_arrays_before_writing(tmp_path):
    with pytest.raises(StoreError, match="expected shape"):
        store.write_frame_scores(tmp_path / "f.h5", np.ones((5, 3)), class_names=CLASSES, **META)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    w = store.FramesWriter(tmp_path / "v.h5", height=4, width=5, video_id="v", fps=10)
    w.append(np.zeros((4, 5, 3), np.uint8), 0.0)
    with pytest.raises(ValueError):
        w.append(np.zeros((4, 6, 3), np.uint8), 0.1)  # wrong size
    w.abort()
    assert list(tmp_path.iterdir()) == []

    with pytest.raises(RuntimeError), store.atomic_h5(tmp_path / "y.h5") as f:
        f["a"] = np.arange(3)
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_frames_writer_streams_and_chunks_per_frame(tmp_path):
    with store.FramesWriter(tmp_path / "v.h5", height=6, width=8, video_id="v", fps=5) as w:
        for i in range(13):  # not a multiple of the write buffer
            w.append(np.full((6, 8, 3), i, np.uint8), i / 5)
    with store.open_record(tmp_path / "v.h5", "frames") as rec:
        assert rec.num_frames == 13 and rec["frames"].chunks == (1, 6, 8, 3)
        assert "32001" in rec["frames"].dataset._filters  # Blosc
        assert [int(rec["frames"][i, 0, 0, 0]) for i in range(13)] == list(range(13))
        np.testing.assert_allclose(rec["timestamps"][()], np.arange(13) / 5)


def test_video_id_and_output_name():
    assert store.video_id_of("a/b/clip01.mp4") == "clip01"
    assert store.video_id_of("x/clip01.frames.h5") == "clip01"
    assert store.video_id_of("x/clip.v2.h5") == "clip.v2"
    assert store.output_name("clip01", "scores") == "clip01.scores.h5"
