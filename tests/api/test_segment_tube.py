"""`vidseg segment-tube`: a tiny trunk + heads checkpoint on short synthetic frames;
outputs, attributes, short videos and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.models.segment_tube import SegmentTubeNet, make_segment_tube_checkpoint
from vidseg_cli.store.describe import describe

torch.set_num_threads(1)

CLASSES = ["background", "jump", "run"]
FAST = ("--superpixels", "40", "-q")


def write_frames(path, t, h=48, w=64, seed=0, fps=10.0):
    """Grey noise with a red square: the saliency start finds the square."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(100, 140, (t, h, w, 3), dtype=np.uint8)
    frames[:, h // 4:h // 2 + 4, w // 4:w // 2, :] = (220, 20, 20)
    with store.FramesWriter(path, height=h, width=w, video_id=path.name.split(".")[0], fps=fps,
                            command="test") as fw:
        for i, f in enumerate(frames):
            fw.append(f, i / fps)
    return frames


def tiny_trunk(path=None):
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    torch.manual_seed(0)
    m = MODELS.build("scnn", stage="localization", num_classes=len(CLASSES), width=1 / 16,
                     frame_size=[32, 24], crop_size=[24, 32], pixel_mean=128.0, pixel_scale=1 / 64)
    if path is not None:
        save_checkpoint(path, m, CLASSES)
    return m


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Heads that call every clip an action of class 1 ('jump')."""
    folder = tmp_path_factory.mktemp("st")
    trunk = tiny_trunk(folder / "scnn.ckpt")
    heads = SegmentTubeNet(num_classes=len(CLASSES), in_features=trunk.feature_dim, hidden=8)
    with torch.no_grad():
        heads.proposal.fc.bias.copy_(torch.tensor([-10.0, 10.0]))
        heads.classification.fc.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    path = folder / "st.ckpt"
    make_segment_tube_checkpoint(folder / "scnn.ckpt", heads, CLASSES, path)
    return path


def test_outputs_attributes_and_frame_scores(cli, weights, tmp_path):
    src = tmp_path / "v1.frames.h5"
    write_frames(src, 40)
    out = tmp_path / "out" / "v1.labels.h5"
    summary = tmp_path / "summary.json"
    r = cli("segment-tube", src, "--weights", weights, "-o", out, "--frame-scores", "--rounds", "2",
            "--json", summary, *FAST)
    assert r.exit_code == 0, r.stderr
    det_path, fs_path = out.with_name("v1.detections.h5"), out.with_name("v1.frame_scores.h5")
    labels, det, fs = store.read_labels(out), store.read_detections(det_path), store.read_frame_scores(fs_path)
    for path in (out, det_path, fs_path):
        assert describe(path)["kind"] in ("labels", "detections", "frame_scores")
    assert labels["labels"].shape == (40, 48, 64) and set(np.unique(labels["labels"])) <= {0, 1}
    assert labels["labels"].any()  # the square is found on the action frames
    assert labels.class_names == CLASSES and det.class_names == CLASSES
    # every window is an action of class 1: α = 1 on the covered frames (all 40: 16-frame
    # windows every 4 frames, 32-frame ones every 8)
    np.testing.assert_array_equal(det["segments"], [[0, 40]])
    np.testing.assert_array_equal(det["labels"], [1])
    np.testing.assert_allclose(fs["probs"][:, 1], 1.0, atol=1e-4)
    attrs = labels.attrs
    assert attrs["video_class"] == 1 and attrs["gamma"] == 0.6 and attrs["max_rounds"] == 2
    assert attrs["clip_lengths"] == [16, 32] and attrs["superpixels"] == 40
    assert attrs["pairwise"] == "normalized" and attrs["gmm_components"] == [5, 3]
    assert 1 <= attrs["rounds"] <= 2 and len(attrs["round_nodes_changed"]) == attrs["rounds"]
    assert det.attrs["round_frames_kept"][0] == 40
    assert attrs["detection_ladder"] == [0.2, 0.3, 0.4, 0.5] and attrs["detection_nms"] == 0.7
    doc = json.loads(summary.read_text())
    (res,) = doc["results"]
    assert res["video_class"] == "jump" and res["num_detections"] == 1
    assert res["frame_scores"] == str(fs_path) and res["rounds"] == attrs["rounds"]


def test_short_video_warns_and_writes_empty_outputs(cli, weights, tmp_path):
    src = tmp_path / "short.frames.h5"
    write_frames(src, 10)
    out = tmp_path / "short.labels.h5"
    r = cli("segment-tube", src, "--weights", weights, "-o", out, *FAST)
    assert r.exit_code == 0, r.stderr
    assert "warning" in r.stderr and "shorter than the 16-frame clip" in r.stderr
    labels = store.read_labels(out)
    assert labels["labels"].shape == (10, 48, 64) and not labels["labels"].any()
    det = store.read_detections(tmp_path / "short.detections.h5")
    assert len(det["segments"]) == 0 and det.attrs["rounds"] == 0


def test_folder_output_names_and_same_result_twice(cli, weights, tmp_path):
    srcs = [tmp_path / "a.frames.h5", tmp_path / "b.frames.h5"]
    write_frames(srcs[0], 20, seed=1)
    write_frames(srcs[1], 20, seed=1)
    r = cli("segment-tube", *srcs, "--weights", weights, "-o", tmp_path / "out", "--rounds", "1", *FAST)
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.detections.h5", "a.labels.h5", "b.detections.h5", "b.labels.h5"]
    a = store.read_labels(tmp_path / "out" / "a.labels.h5")["labels"]
    np.testing.assert_array_equal(a, store.read_labels(tmp_path / "out" / "b.labels.h5")["labels"])


def test_detection_ladder_option(cli, weights, tmp_path):
    src = tmp_path / "v.frames.h5"
    write_frames(src, 20)
    r = cli("segment-tube", src, "--weights", weights, "-o", tmp_path / "p.labels.h5", "--rounds", "1",
            "--detection-ladder", "none", *FAST)
    assert r.exit_code == 0, r.stderr
    det = store.read_detections(tmp_path / "p.detections.h5")
    assert list(det.attrs["detection_ladder"]) == [] and det["segments"].tolist() == [[0, 20]]
    for bad in ("0.2,x", "1.5", ""):
        r = cli("segment-tube", src, "--weights", weights, "-o", tmp_path / "q.labels.h5",
                "--detection-ladder", bad, *FAST)
        assert r.exit_code == 2 and "--detection-ladder" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("q.*"))


def test_bad_inputs_are_one_line_and_write_nothing(cli, weights, tmp_path):
    src = tmp_path / "v.frames.h5"
    write_frames(src, 20)
    heads_only = tmp_path / "heads.ckpt"
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    save_checkpoint(heads_only, MODELS.build("segment_tube", num_classes=3, in_features=8, hidden=4), CLASSES)
    for ckpt, problem in ((weights.with_name("scnn.ckpt"), "not 'segment_tube'"),
                          (heads_only, "no C3D trunk")):
        r = cli("segment-tube", src, "--weights", ckpt, "-o", tmp_path / "o.labels.h5", "-q")
        assert r.exit_code == 2 and problem in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    small = tmp_path / "small.frames.h5"
    write_frames(small, 20, h=16, w=16)
    r = cli("segment-tube", small, "--weights", weights, "-o", tmp_path / "o.labels.h5", "-q")
    assert r.exit_code == 2 and "smaller than the trunk's 32x24 crop" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("o.*"))
