"""train segment: a shortened learning check, exact resume, the datasets it reads, the
weighted loss, and one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vidseg_cli.datasets.segment_data import (
    IGNORE,
    ClipSpec,
    SegmentClips,
    open_segment_dataset,
    sample_clip,
)
from vidseg_cli.models.checkpoint.format import read_checkpoint
from vidseg_cli.models.preprocess import Preprocess
from vidseg_cli.train.segment import class_weight_vector, weighted_cross_entropy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    """Two 6-second 128x96 training videos (one with an action), no test videos (validation = training videos)."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    out = tmp_path_factory.mktemp("synth")
    res = CliRunner().invoke(cli, ["synth", "-o", str(out), "--train", "2", "--test", "0", "--size", "128x96",
                                   "--duration", "6,6", "--seed", "1", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


TINY = ["--recipe", "synthetic", "--width", "0.0625", "--device", "cpu", "-q"]


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_sep3d_learns_its_training_videos(cli, tiny_synth, tmp_path):
    run = tmp_path / "run"
    res = cli("train", "segment", "--model", "sep3d", "--data", tiny_synth, "-o", run, *TINY,
              "--epochs", "8", "--clips-per-video", "16", "--batch-size", "4", "--lr", "0.01",
              "--class-weights", "1,5", "--clip-len", "8", "--val-videos", "0")
    assert res.exit_code == 0, res.output
    log = _log(run)
    assert len(log) == 8
    assert log[-1]["loss"] < 0.6 * log[0]["loss"], [r["loss"] for r in log]
    assert max(r["val"]["foreground_iou"] for r in log) >= 0.5, [r["val"] for r in log]
    ck = read_checkpoint(run / "best.ckpt")
    assert ck["model"] == "sep3d" and ck["classes"] == ["background", "foreground"]
    assert ck["preprocess"]["clip_len"] == 8 and ck["preprocess"]["mean"] == [127.5] * 3
    # best.ckpt says how it was trained (no optimizer state), so a copy on its own still
    # tells train sep3d-head the class weights
    assert "train_state" not in ck and ck["training"]["settings"]["recipe"]["class_weights"] == [1.0, 5.0]
    assert 1 <= ck["training"]["epoch"] <= 8 and ck["training"]["step"] > 0
    alone = tmp_path / "alone" / "seg.ckpt"
    alone.parent.mkdir()
    alone.write_bytes((run / "best.ckpt").read_bytes())
    from vidseg_cli.train.head_loss import segmenter_class_weights

    assert segmenter_class_weights(alone) == ((1.0, 5.0), f"{alone} (training settings)")
    # the checkpoint runs as segment-3d on the extracted frames of a training video
    frames = tmp_path / "v.frames.h5"
    assert cli("extract-frames", tiny_synth / "videos" / "synth_train_0001.mp4", "-o", frames, "-q").exit_code == 0
    res = cli("segment-3d", frames, "--model", "sep3d", "--weights", run / "best.ckpt", "-o", tmp_path / "s.h5", "-q")
    assert res.exit_code == 0, res.output
    from vidseg_cli.datasets.masks import read_labels_file, read_scores_file
    from vidseg_cli.metrics.masks import foreground_counts

    pred = read_scores_file(tmp_path / "s.h5").masks
    i, u = foreground_counts(read_labels_file(tiny_synth / "labels" / "synth_train_0001.labels.h5").masks, pred)
    assert i / u >= 0.4


def test_resume_is_exact(cli, tiny_synth, tmp_path):
    args = ["--model", "3dfcn-32s", "--data", tiny_synth, *TINY, "--clip-len", "16", "--crop", "112",
            "--short-side", "112", "--batch-size", "2", "--val-videos", "1"]
    assert cli("train", "segment", *args, "-o", tmp_path / "a", "--epochs", "2").exit_code == 0
    assert cli("train", "segment", *args, "-o", tmp_path / "b", "--epochs", "1").exit_code == 0
    res = cli("train", "segment", *args, "-o", tmp_path / "b", "--epochs", "2", "--resume")
    assert res.exit_code == 0, res.output
    a, b = read_checkpoint(tmp_path / "a" / "last.ckpt"), read_checkpoint(tmp_path / "b" / "last.ckpt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [r["loss"] for r in _log(tmp_path / "a")] == [r["loss"] for r in _log(tmp_path / "b")]
    assert a["preprocess"]["short_side"] == 112 and a["classes"][0] == "background"


def _one_error(res, stage="train segment"):
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"vidseg {stage}: error: "), res.stderr
    return lines[0]


def test_bad_inputs_are_one_line(cli, tiny_synth, tmp_path):
    base = ["--model", "sep3d", "--data", tiny_synth, "-o", tmp_path / "r", *TINY]
    assert "no such dataset folder" in _one_error(cli("train", "segment", *base[:3], tmp_path / "nope", *base[4:]))
    assert "not a known segmentation dataset layout" in _one_error(
        cli("train", "segment", "--model", "sep3d", "--data", tmp_path, "-o", tmp_path / "r", *TINY))
    assert "nothing to resume" in _one_error(cli("train", "segment", *base, "--resume"))
    junk = tmp_path / "junk.pth"
    torch.save({"foo.weight": torch.zeros(2)}, junk)
    assert "unknown weight layout" in _one_error(cli("train", "segment", *base, "--init", junk))
    # a C3D-port layout does not fit Sep3D
    c3d = tmp_path / "c3d.pickle"
    torch.save({"conv3a.weight": torch.zeros(1, 1, 3, 3, 3), "fc6.weight": torch.zeros(2, 2)}, c3d)
    assert "fit c3d, 3dfcn-32s, 3dfcn-8s, not sep3d" in _one_error(cli("train", "segment", *base, "--init", c3d))


def test_resume_refuses_another_class_list(cli, tiny_synth, tmp_path):
    args = ["--model", "sep3d", "--data", tiny_synth, "-o", tmp_path / "r", *TINY, "--max-steps", "1",
            "--val-videos", "1", "--crop", "32"]
    assert cli("train", "segment", *args).exit_code == 0
    line = _one_error(cli("train", "segment", *args, "--target", "classes", "--resume"))
    assert "checkpoint classes differ" in line


# -- datasets ------------------------------------------------------------------------------
def test_clips_are_deterministic_and_padded():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (20, 30, 40, 3), dtype=np.uint8)
    labels = np.zeros((20, 30, 40), np.uint8)
    labels[5:9, 10:14, 20:25] = 2
    spec = ClipSpec(clip_len=8, crop=48, preprocess=Preprocess((10, 20, 30), (1.0, 1.0, 1.0)),
                    scale_jitter=(0.9, 1.1), action_bias=1.0)
    x1, y1 = sample_clip(frames, labels, spec, np.random.default_rng([1, 2, 3]))
    x2, y2 = sample_clip(frames, labels, spec, np.random.default_rng([1, 2, 3]))
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.shape == (8, 48, 48, 3) and y1.shape == (8, 48, 48)
    assert (y1 == IGNORE).any() and (y1 == 2).any()  # padded, and centred on the action
    assert np.all(x1[y1 == IGNORE] == [10, 20, 30])
    ds = SegmentClips([], spec, seed=4)
    assert len(ds) == 0 and np.array_equal(SegmentClips([None] * 5, spec, seed=4).order(2),
                                           SegmentClips([None] * 5, spec, seed=4).order(2))


def test_weighted_loss_is_the_weighted_mean():
    logits = torch.randn(1, 3, 2, 4, 5)
    target = torch.randint(0, 3, (1, 2, 4, 5))
    target[0, 0, 0, :] = IGNORE
    w = class_weight_vector(3, (0.1, 10.0))
    assert w.tolist() == pytest.approx([0.1, 10.0, 10.0])
    logp = torch.log_softmax(logits, 1)
    keep = target != IGNORE
    t = target.clamp(max=2)
    nll = -logp.gather(1, t[:, None])[:, 0]
    ww = w[t]
    expect = (nll * ww)[keep].sum() / ww[keep].sum()
    torch.testing.assert_close(weighted_cross_entropy(logits, target, w), expect)
    assert weighted_cross_entropy(logits, torch.full_like(target, IGNORE), w).item() == 0.0


def test_jhmdb_and_davis_layouts(refdata, tmp_path):
    jh = tmp_path / "jhmdb"
    vid = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    (jh / "puppet_mask" / "catch" / vid).mkdir(parents=True)
    shutil.copy(refdata / "jhmdb" / "puppet_mask" / "catch" / f"{vid}.mat", jh / "puppet_mask" / "catch" / vid / "puppet_mask.mat")
    (jh / "Rename_Images" / "catch").mkdir(parents=True)
    (jh / "Rename_Images" / "catch" / vid).symlink_to(refdata / "jhmdb" / "frames" / vid)
    (jh / "splits").mkdir()
    (jh / "splits" / "catch_test_split1.txt").write_text(f"{vid}.avi 2\n")
    ds = open_segment_dataset(jh, target="classes")
    assert ds.layout == "jhmdb" and len(ds.classes) == 22 and not ds.train and [v.video_id for v in ds.val] == [vid]
    frames, labels = ds.val[0].load()
    assert frames.shape == (40, 240, 320, 3) and labels.shape == (40, 240, 320)
    assert set(np.unique(labels)) == {0, ds.classes.index("catch")}
    dv = open_segment_dataset(refdata / "davis2016", target="classes")
    assert dv.layout == "davis" and dv.classes == ["background", "foreground"] and len(dv.train) == 4
    assert any("validating on the training" in w for w in dv.warnings)


def test_unreadable_split_files_are_named(refdata, tmp_path):
    """A split file that is not text (J-HMDB splits/, DAVIS ImageSets/) is one InputError
    naming it, not a UnicodeDecodeError from deep inside."""
    from vidseg_cli.errors import InputError

    jh = tmp_path / "jhmdb"
    vid = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    (jh / "puppet_mask" / "catch" / vid).mkdir(parents=True)
    shutil.copy(refdata / "jhmdb" / "puppet_mask" / "catch" / f"{vid}.mat", jh / "puppet_mask" / "catch" / vid / "puppet_mask.mat")
    (jh / "Rename_Images" / "catch").mkdir(parents=True)
    (jh / "Rename_Images" / "catch" / vid).symlink_to(refdata / "jhmdb" / "frames" / vid)
    (jh / "splits").mkdir()
    bad = jh / "splits" / "catch_test_split1.txt"
    bad.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match="cannot read") as e:
        open_segment_dataset(jh, target="classes")
    assert e.value.path == str(bad)
    dv = tmp_path / "davis"
    shutil.copytree(refdata / "davis2016", dv, symlinks=True)
    sets = dv / "ImageSets" / "480p"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match="cannot read") as e:
        open_segment_dataset(dv, target="classes")
    assert e.value.path == str(sets / "train.txt")


def test_labels_files_of_another_set_or_out_of_range_are_named(cli, tiny_synth, tmp_path):
    # Found where the file is read (open or first load), not later as a bare ValueError in
    # a batch: one line naming the labels file.
    import shutil

    import h5py

    data = tmp_path / "set"
    shutil.copytree(tiny_synth, data)
    bad = data / "labels" / "synth_train_0001.labels.h5"
    args = ["--model", "sep3d", "--data", data, "-o", tmp_path / "r", *TINY, "--max-steps", "1",
            "--val-videos", "1", "--crop", "32"]
    with h5py.File(bad, "r+") as f:
        names = list(f.attrs["class_names"])
        f.attrs["class_names"] = names + ["Extra"]
    line = _one_error(cli("train", "segment", *args))
    assert f"{bad}: classes" in line and "differ from the set's" in line
    with h5py.File(bad, "r+") as f:
        f.attrs["class_names"] = names
        lab = f["labels"][:]
        lab[0, 0, 0] = len(names)
        f["labels"][:] = lab
    line = _one_error(cli("train", "segment", *args))
    assert line.endswith(f"{bad}: label {len(names)} is not one of its {len(names)} classes")
