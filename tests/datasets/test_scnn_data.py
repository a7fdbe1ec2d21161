"""S-CNN data (§3.1-3.2) and its network: window labels by hand, clips against brute force,
background counts, window-length frequencies, the stage network's shapes and checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_cli.datasets.scnn_data import (
    ClipReader,
    SCNNData,
    Segment,
    clip_batch,
    label_windows,
)
from vidseg_cli.geometry import tiou_matrix
from vidseg_cli.models import MODELS
from vidseg_cli.models.preprocess import WindowSpec, resize_frames
from vidseg_cli.stages.windows import sample_clip_indices

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _scnn_model():
    # Imported here, not at collection: train/scnn.py registers model "scnn", and
    # tests/models/test_checkpoint.py expects the registry to hold models/' own models only.
    import vidseg_cli.models.scnn  # noqa: F401


def test_label_windows_by_hand():
    gt = np.array([[100, 140], [300, 345]])  # class 1 (40 frames) and class 2 (45 frames)
    windows = np.array([
        [104, 140],  # IoU 36/40 = 0.9 with gt 0 -> positive 1
        [100, 160],  # 40/60 = 0.667 -> ignored (between 0.3 and 0.7), gt 0 already has a > 0.7
        [0, 16],  # no overlap -> background
        [130, 170],  # 10/70 = 0.14 -> background
        [290, 340],  # 40/55 = 0.727 with gt 1 -> positive 2
        [120, 150],  # 20/50 = 0.4 -> ignored
    ])
    labels, ov = label_windows(windows, gt, np.array([1, 2]))
    assert labels.tolist() == [1, -1, 0, 0, 2, -1]
    assert ov[0] == pytest.approx(0.9) and ov[4] == pytest.approx(40 / 55)
    assert ov[2] == 1.0  # background: v = 1 (does not enter Eq. 3)


def test_rescue_of_a_gt_without_a_window_above_07():
    gt = np.array([[0, 100]])
    windows = np.array([[0, 64], [10, 74], [20, 84], [40, 104]])  # best 64/100 = 0.64
    labels, ov = label_windows(windows, gt, np.array([3]))
    assert labels.tolist() == [3, -1, -1, -1]  # [0,64) and [10,74) tie at 0.64: the first
    assert ov[0] == pytest.approx(0.64)
    # Not rescued when the best IoU is 0.5 or less.
    labels, _ = label_windows(np.array([[0, 50], [60, 110]]), gt, np.array([3]))
    assert labels.tolist() == [-1, -1]


def test_label_windows_without_gt_all_background():
    labels, _ = label_windows(np.array([[0, 16], [4, 20]]), np.zeros((0, 2)), np.zeros(0, int))
    assert labels.tolist() == [0, 0]


def test_iou_matrix_matches_definition():
    a, b = np.array([[0, 10], [5, 15]]), np.array([[0, 10], [10, 20], [2, 4]])
    want = [[1.0, 0.0, 0.2], [5 / 15, 5 / 15, 0.0]]
    np.testing.assert_allclose(tiou_matrix(a, b), want)


def _data(num_pos=(6, 2, 4), bg=40):
    segs = []
    rng = np.random.default_rng(0)
    for k, n in enumerate(num_pos, start=1):
        for i in range(n):
            length = [32, 64][i % 2] if k != 2 else 32
            s = int(rng.integers(0, 100))
            segs.append(Segment(0, s, s + length, k, 0.8))
    segs.append(Segment(1, 0, 50, 1, 1.0, trimmed=True))
    frames = np.zeros((200, 8, 8, 3), np.uint8)
    from vidseg_cli.datasets.scnn_data import CachedVideo

    return SCNNData(["background", "a", "b", "c"], [CachedVideo("x", frames, 10.0)] * 2, ["v", "t"],
                    segs, [Segment(0, i, i + 16, 0, 1.0) for i in range(bg)], (16, 32, 64))


def test_background_counts_per_stage():
    d = _data()
    assert len(d.positives) == 13  # N_T + N_U
    assert d.num_background("proposal") == 13
    assert d.num_background("classification") == round(13 / 3)
    ep = d.epoch("classification", np.random.default_rng(0))
    assert len(ep) == 13 + 4 and sum(s.label == 0 for s in ep) == 4
    assert len({(s.start, s.end) for s in ep if s.label == 0}) == 4  # sampled without replacement


def test_window_frequency_per_class():
    d = _data()
    f = np.array(d.window_frequency())
    assert f.shape == (4, 3)
    np.testing.assert_allclose(f[0], 0)  # background
    np.testing.assert_allclose(f[1], [0, 0.5, 0.5])  # 3 of 32, 3 of 64; the trimmed clip not counted
    np.testing.assert_allclose(f[2], [0, 1, 0])
    np.testing.assert_allclose(f[3], [0, 0.5, 0.5])


def test_clip_reader_equals_brute_force():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (90, 30, 40, 3), dtype=np.uint8)
    spec = WindowSpec(frame_size=(20, 16), crop_size=(12, 14))
    windows = np.array([[40, 72], [0, 16], [10, 74], [0, 64], [60, 90], [8, 24]])
    order = ClipReader.ordered(windows)
    reader = ClipReader(frames, spec, read_block=7)
    got = np.concatenate([reader.clips(windows[order[i:i + 2]]) for i in range(0, len(order), 2)])
    small = resize_frames(frames, spec.frame_hw)  # 90 x 16 x 20 x 3
    y0, x0 = (16 - 12) // 2, (20 - 14) // 2
    for row, w in zip(got, windows[order]):
        idx = sample_clip_indices(*w)
        want = small[idx, y0:y0 + 12, x0:x0 + 14].transpose(3, 0, 1, 2)
        np.testing.assert_array_equal(row, want)
    with pytest.raises(ValueError, match="start order"):
        reader.clips(np.array([[0, 16]]))


def test_clip_batch_flip_and_offset():
    frames = np.arange(4 * 6 * 8 * 3, dtype=np.uint8).reshape(4, 6, 8, 3)
    spec = WindowSpec(frame_size=(8, 6), crop_size=(4, 4), clip_frames=2)
    out = clip_batch(frames, np.array([[0, 2]]), spec, np.array([[1, 3]]), np.array([True]))
    np.testing.assert_array_equal(out[0], frames[[0, 2], 1:5, 3:7][:, :, ::-1].transpose(3, 0, 1, 2))


@pytest.mark.parametrize("crop,stage,k", [((48, 64), "proposal", 2), ((112, 112), "localization", 5),
                                          ((32, 32), "classification", 3)])
def test_stage_network_shapes(crop, stage, k):
    m = MODELS.build("scnn", stage=stage, num_classes=k, width=1 / 16, crop_size=crop,
                     frame_size=(crop[1], crop[0])).eval()
    x = torch.randint(0, 256, (2, 3, 16, *crop), dtype=torch.uint8)
    assert m(x).shape == (2, k)
    assert m.model_config["stage"] == stage and list(m.model_config["crop_size"]) == list(crop)


def test_stage_network_checks():
    with pytest.raises(ValueError, match="2 outputs"):
        MODELS.build("scnn", stage="proposal", num_classes=3, width=1 / 16)
    with pytest.raises(ValueError, match="stage"):
        MODELS.build("scnn", stage="detector", num_classes=3, width=1 / 16)
    with pytest.raises(ValueError, match="window_frequency"):
        MODELS.build("scnn", num_classes=3, width=1 / 16, window_frequency=[[1.0]])


def test_frequency_lookup():
    wf = [[0, 0, 0], [0.2, 0.8, 0.0], [1.0, 0.0, 0.0]]
    m = MODELS.build("scnn", num_classes=3, width=1 / 16, window_lengths=[16, 32, 64], window_frequency=wf)
    got = m.frequency(np.array([1, 1, 2, 2]), np.array([32, 64, 16, 48]))
    np.testing.assert_allclose(got, [0.8, 0.0, 1.0, 0.0])  # 48: never a training length -> 0


def test_c3d_sports1m_port_initializes_a_full_size_stage_network():
    from tests.models.test_public_layouts import fake
    from vidseg_cli.errors import InputError
    from vidseg_cli.models.checkpoint.layouts import load_public_weights

    sd = fake("c3d_sports1m_pytorch_port")
    with torch.device("meta"):
        m = MODELS.build("scnn", stage="proposal", num_classes=2)  # S-CNN §3.1: 112 x 112
    rep = load_public_weights(sd, m, assign=True, path="c3d.pickle")
    assert rep.layout == "c3d-sports1m-port" and "fc8" in rep.notes  # 2-way fc8 stays fresh
    assert torch.equal(m.conv3a.weight, sd["conv3a.weight"]) and torch.equal(m.fc6.weight, sd["fc6.weight"])
    with torch.device("meta"):  # a smaller crop has another fc6: the port does not fit
        small = MODELS.build("scnn", stage="proposal", num_classes=2, crop_size=[48, 64], frame_size=[64, 48])
    with pytest.raises(InputError, match=r"shape mismatch \[fc6.weight \[4096, 8192\] \(model \[4096, 3072\]\)"):
        load_public_weights(sd, small, assign=True, path="c3d.pickle")


def test_thumos14_layout_with_trimmed_clips(tmp_path):
    from tests.api.test_propose import write_frames
    from vidseg_cli.datasets.scnn_data import FrameCache, load_scnn_data
    from vidseg_cli.errors import InputError

    ann, vids, trimmed = tmp_path / "annotation_val", tmp_path / "videos", tmp_path / "trimmed"
    ann.mkdir()
    (ann / "detclasslist.txt").write_text("7 Jump\n9 Run\n")
    # 10 fps: Jump [3.2, 6.4) s = frames [32, 64); Run [10, 14.8) s = frames [100, 148)
    (ann / "Jump_val.txt").write_text("video_validation_1 3.2 6.4\n")
    (ann / "Run_val.txt").write_text("video_validation_1 10.0 14.8\n")
    vids.mkdir()
    write_frames(vids / "video_validation_1.frames.h5", 160, h=12, w=16)
    (trimmed / "Run").mkdir(parents=True)
    write_frames(trimmed / "Run" / "v_Run_g01.frames.h5", 40, h=12, w=16)
    cache = FrameCache(tmp_path / "cache", (16, 12))
    d = load_scnn_data(ann, vids, cache, "validation", trimmed, lengths=(16, 32, 64))
    assert d.classes == ["background", "Jump", "Run"]
    pos = {(s.start, s.end, s.label, s.trimmed) for s in d.positives}
    assert (32, 64, 1, False) in pos  # exact 32-frame window: IoU 1
    assert (0, 40, 2, True) in pos  # the trimmed clip, whole
    assert all(s.label == 2 for s in d.positives if 100 <= s.start < 148)
    assert d.stats["untrimmed_videos"] == 1 and d.stats["trimmed_videos"] == 1
    assert d.videos[0].frames.shape == (160, 12, 16, 3)
    # A second load maps the cache instead of decoding again.
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    load_scnn_data(ann, vids, cache, "validation", None, lengths=(16, 32, 64))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    (trimmed / "Swim").mkdir()
    with pytest.raises(InputError, match="class folder 'Swim' is not a ground-truth class"):
        load_scnn_data(ann, vids, cache, "validation", trimmed, lengths=(16, 32, 64))
    (vids / "video_validation_1.frames.h5").unlink()
    with pytest.raises(InputError, match="1 of the 1 ground-truth videos are missing"):
        load_scnn_data(ann, vids, cache, "validation", None)
