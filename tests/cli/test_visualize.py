"""`vidseg visualize` as a user runs it: what it writes, what it says, what it skips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.viz.colors import class_color
from vidseg_cli.viz.overlay import ALPHA

NAMES = ["background", "jump", "run"]
T, H, W = 6, 24, 32


def _frames(path, vid, value=100):
    with store.FramesWriter(path, height=H, width=W, fps=10.0, video_id=vid) as fw:
        for i in range(T):
            fw.append(np.full((H, W, 3), value, np.uint8), i / 10.0)
    return path


def _labels(path, vid, frames=None, size=(H, W)):
    lab = np.zeros((T, *size), np.uint8)
    lab[:, 4:12, 8:20] = 1  # jump, in every frame (at the frames' size)
    inputs = [store.input_record(frames)] if frames else []
    store.write_labels(path, lab, class_names=NAMES, video_id=vid, num_frames=T, fps=10.0,
                       inputs=inputs)
    return path


@pytest.fixture
def videos(tmp_path):
    fr = tmp_path / "frames"
    fr.mkdir()
    a = _frames(fr / "a.frames.h5", "a")
    b = _frames(fr / "b.frames.h5", "b")
    _labels(tmp_path / "a.labels.h5", "a", frames=a)
    _labels(tmp_path / "b.labels.h5", "b", frames=b)
    return tmp_path


def test_labels_become_a_webm_and_stills_in_the_class_colour(cli, videos):
    out = videos / "vis"
    res = cli("visualize", videos / "a.labels.h5", "-o", out, "--frames-png", "2",
              "--json", "-", "-q")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    written = doc["written"]
    assert str(out / "a.labels.overlay.webm") in written
    stills = sorted(out.glob("a.labels.frame*.png"))
    assert [str(p) for p in stills] == sorted(w for w in written if w.endswith(".png"))
    assert len(stills) == 2
    cap = cv2.VideoCapture(str(out / "a.labels.overlay.webm"))
    n = 0
    while cap.grab():
        n += 1
    assert n == T and int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP90"
    img = cv2.imread(str(stills[0]))[..., ::-1]
    s = 2  # 24 px frames are enlarged twice
    jump = np.rint(100 * (1 - ALPHA) + np.array(class_color("jump")) * ALPHA)
    assert (img[4 * s:12 * s, 8 * s:20 * s] == jump).all()
    assert (img[: 4 * s, : W * s] == 100).all()
    assert img.shape[1] == W * s and img.shape[0] > H * s  # the legend below


def test_a_batch_goes_on_past_a_labels_file_without_frames(cli, videos):
    _labels(videos / "c.labels.h5", "c")  # no provenance, no --frames
    out = videos / "vis"
    res = cli("visualize", videos / "a.labels.h5", videos / "c.labels.h5", "-o", out, "-q")
    assert res.exit_code == 1
    errors = [ln for ln in res.stderr.splitlines() if ": error: " in ln]
    assert errors == [f"vidseg visualize: error: {videos / 'c.labels.h5'}: no frames file for "
                      "video 'c': its provenance names none that still exists; give it with "
                      "--frames"]
    assert (out / "a.labels.overlay.webm").exists()
    assert not (out / "c.labels.overlay.webm").exists()
    assert not list(out.glob(".vidseg-tmp-*"))


def test_mismatched_video_ids_under_frames_are_one_line(cli, videos):
    res = cli("visualize", videos / "a.labels.h5", videos / "b.labels.h5", "--frames",
              videos / "frames" / "a.frames.h5", "-o", videos / "vis", "-q")
    assert res.exit_code == 1
    assert (f"{videos / 'b.labels.h5'}: no frames file for video 'b' among --frames"
            in res.stderr)
    assert (videos / "vis" / "a.labels.overlay.webm").exists()


def test_masks_of_another_size_are_resized_with_a_notice(cli, videos):
    _labels(videos / "small.labels.h5", "a", frames=videos / "frames" / "a.frames.h5",
            size=(H // 2, W // 2))
    res = cli("visualize", videos / "small.labels.h5", "-o", videos / "vis", "-q")
    assert res.exit_code == 0, res.output
    assert "masks of 16x12 drawn on frames of 32x24, resized (nearest neighbour)" in res.stderr
    assert (videos / "vis" / "small.labels.overlay.webm").exists()


def test_ground_truth_masks_are_outlined(cli, videos):
    gt = videos / "gt"
    gt.mkdir()
    lab = np.zeros((T, H, W), np.uint8)
    lab[:, 10:20, 2:12] = 2  # run
    store.write_labels(gt / "a.labels.h5", lab, class_names=NAMES, video_id="a",
                       num_frames=T, fps=10.0)
    res = cli("visualize", videos / "a.labels.h5", "--gt", gt, "-o", videos / "vis",
              "--frames-png", "1", "-q")
    assert res.exit_code == 0, res.output
    (still,) = (videos / "vis").glob("a.labels.frame*.png")
    img = cv2.imread(str(still))[..., ::-1]
    s = 2
    assert (img[10 * s, 6 * s] == class_color("run")).all()  # the outline's top edge
    assert (img[15 * s, 6 * s] != class_color("run")).any()  # not its inside


def test_an_empty_detections_file_is_an_empty_timeline(cli, tmp_path):
    store.write_detections(tmp_path / "e.detections.h5", np.zeros((0, 2)), [], [],
                           class_names=NAMES, video_id="e", num_frames=50, fps=10.0)
    res = cli("visualize", tmp_path / "e.detections.h5", "-o", tmp_path / "vis", "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "vis" / "e.detections.timeline.svg").exists()
    assert (tmp_path / "vis" / "e.detections.timeline.png").exists()


def test_reruns_skip_and_overwrite_redoes(cli, videos):
    out = videos / "vis"
    assert cli("visualize", videos / "a.labels.h5", "-o", out, "-q").exit_code == 0
    res = cli("visualize", videos / "a.labels.h5", "-o", out)
    assert res.exit_code == 0 and "exists, skipped" in res.stderr
    before = (out / "a.labels.overlay.webm").stat().st_mtime_ns
    assert cli("visualize", videos / "a.labels.h5", "-o", out, "--overwrite", "-q").exit_code == 0
    assert (out / "a.labels.overlay.webm").stat().st_mtime_ns != before


def test_a_file_of_a_kind_without_a_picture_is_refused(cli, videos):
    res = cli("visualize", videos / "frames" / "a.frames.h5", "-o", videos / "vis", "-q")
    assert res.exit_code == 2
    assert "a frames file has no picture" in res.stderr


def test_coarse_posteriors_are_upsampled_by_their_stride_without_a_warning(cli, videos):
    probs = np.zeros((T, 3, H // 2, W // 2), np.float32)
    probs[:, 0] = 1.0
    probs[:, :, 2:6, 4:10] = np.array([0.0, 1.0, 0.0], np.float32)[:, None, None]
    store.write_scores(videos / "a.scores.h5", probs, class_names=NAMES, video_id="a",
                       num_frames=T, fps=10.0, attrs={"spatial_stride": 2},
                       inputs=[store.input_record(videos / "frames" / "a.frames.h5")])
    res = cli("visualize", videos / "a.scores.h5", "-o", videos / "vis", "--frames-png", "1")
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr
    (still,) = (videos / "vis").glob("a.scores.frame*.png")
    img = cv2.imread(str(still))[..., ::-1]
    jump = np.rint(100 * (1 - ALPHA) + np.array(class_color("jump")) * ALPHA)
    s = 2
    assert (img[6 * s:10 * s, 10 * s:18 * s] == jump).all()  # the cells' inside, at stride 2
    assert (img[0:2 * s, 0:2 * s] == 100).all()
