"""Sep3D's action head (Sep3D §4): the largest-component rule by hand, its training targets,
a short training on a tiny synthetic set on top of the shipped Sep3D, segment-3d's
per-frame action scores (checked against a direct computation), the optional scores
dataset, evaluate's frame-mAP, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import ROOT
from vidseg_cli import store
from vidseg_cli.stages.components import component_classes, largest_component

torch.set_num_threads(1)
SEGMENTER = ROOT / "sample_data" / "weights" / "sep3d_synth.ckpt"  # width 1/8, 16-frame clips


def _run(*args):
    from vidseg_cli.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# -- the rule and the targets, by hand ---------------------------------------------------------
def test_largest_component_and_its_class_by_hand():
    m = np.zeros((3, 5, 6), np.uint8)
    m[0, 0, 0:2] = 2  # 2 pixels
    m[0, 2:4, 3:5] = 1  # 4 pixels: the largest
    m[0, 4, 5] = 1  # diagonal to (3, 4): joins it (8-connected) -> 5 pixels
    m[1, 0, 0] = m[1, 4, 5] = 3  # a tie of 1-pixel regions: the first in raster order
    keep, valid = largest_component(m)
    assert valid.tolist() == [True, True, False]
    want0 = np.zeros((5, 6), bool)
    want0[2:4, 3:5] = True
    want0[4, 5] = True
    assert (keep[0] == want0).all()
    assert keep[1].sum() == 1 and keep[1, 0, 0] and not keep[2].any()
    lab = m.copy()
    lab[0, 2, 3] = 4  # the region holds 4 pixels of class 1 and 1 of class 4
    assert component_classes(lab, keep).tolist() == [1, 3, -1]
    lab[0, 2:4, 3:5] = 255  # padding is not counted: class 1 remains only at (4, 5)
    assert component_classes(lab, keep).tolist() == [1, 3, -1]


def test_frame_targets_by_hand():
    from vidseg_cli.train.head_loss import IGNORE_FRAME, head_frame_targets

    y = np.zeros((1, 3, 8, 10), np.uint8)
    y[0, 0, 1:4, 2:5] = 3  # 9 pixels of class 3 (action index 2)
    y[0, 0, 6, 8] = 1  # a smaller region elsewhere
    y[0, 1, :, :] = 255  # padding only: no actor
    y[0, 2, 5:7, 0:2] = 1
    boxes, target = head_frame_targets(y, num_actions=3)
    assert target.tolist() == [[2, IGNORE_FRAME, 0]]
    assert boxes[0, 0].tolist() == [2, 1, 5, 4] and boxes[0, 2].tolist() == [0, 5, 2, 7]
    with pytest.raises(ValueError, match="not one of the 2 action classes"):
        head_frame_targets(y, num_actions=2)


def test_sep3d_with_head_round_trip_and_frozen_segmenter(tmp_path):
    from vidseg_cli.models import MODELS, save_checkpoint
    from vidseg_cli.models.checkpoint.format import build_from_checkpoint

    torch.manual_seed(0)
    cfg = {"segmenter": {"num_classes": 2, "width": 1 / 16, "crop_size": 32},
           "action_names": ["jump", "run"], "hidden": 8}
    model = MODELS.build("sep3d+head", **cfg).train()
    assert model.head.training and not model.segmenter.training  # BN statistics stay put
    assert not any(p.requires_grad for p in model.segmenter.parameters())
    x = torch.randn(1, 3, 4, 32, 32)
    box = torch.tensor([[4.0, 8.0, 20.0, 30.0]])
    with torch.no_grad():
        logits, feats = model.segmenter.forward_with_features(x)
        want = model.head.classify(feats[:, :, 0], box, (32, 32))
    path = save_checkpoint(tmp_path / "h.ckpt", model, ["background", "foreground"])
    again, ck = build_from_checkpoint(path, expect_model="sep3d+head")
    assert ck["config"]["segmenter"]["width"] == 1 / 16 and again.action_names == ["jump", "run"]
    with torch.no_grad():
        torch.testing.assert_close(again(x), logits)
        torch.testing.assert_close(again.head.classify(again.segmenter.forward_with_features(x)[1][:, :, 0],
                                                       box, (32, 32)), want)


# -- the optional dataset of a scores file ------------------------------------------------------
def test_action_scores_are_optional_and_validated_when_present(tmp_path):
    probs = np.full((4, 2, 3, 5), 0.5, np.float32)
    meta = dict(video_id="v", num_frames=4, fps=10.0, class_names=["background", "foreground"])
    acts = np.full((4, 3), 1 / 3, np.float32)
    acts[1] = np.nan
    store.write(tmp_path / "a.h5", "scores", {"probs": probs, "action_scores": acts},
                attrs={"action_names": ["x", "y", "z"]}, **meta)
    rec = store.read_scores(tmp_path / "a.h5")
    assert rec["action_scores"].shape == (4, 3) and rec.attrs["action_names"] == ["x", "y", "z"]
    store.write(tmp_path / "b.h5", "scores", {"probs": probs}, **meta)  # absent: fine
    assert "action_scores" not in store.read_scores(tmp_path / "b.h5")
    # Refused when written, before anything is on disk...
    with pytest.raises(store.StoreError, match="needs a root attribute 'action_names'"):
        store.write(tmp_path / "c.h5", "scores", {"probs": probs, "action_scores": acts}, **meta)
    with pytest.raises(store.StoreError, match=r"'action_scores': expected shape \(T=4, A=2\)"):
        store.write(tmp_path / "d.h5", "scores", {"probs": probs, "action_scores": acts},
                    attrs={"action_names": ["x", "y"]}, **meta)
    assert not (tmp_path / "c.h5").exists() and not (tmp_path / "d.h5").exists()
    # ... and when read (a file written by another tool).
    import h5py

    with h5py.File(tmp_path / "a.h5", "r+") as f:
        del f.attrs["action_names"]
    with pytest.raises(store.StoreError, match="needs a root attribute 'action_names'") as e:
        store.read_scores(tmp_path / "a.h5")
    assert str(tmp_path / "a.h5") in str(e.value)
    with pytest.raises(store.StoreError, match="action_scores"):
        store.write(tmp_path / "e.h5", "scores", {"probs": probs, "action_scores": acts[:3]},
                    attrs={"action_names": ["x", "y", "z"]}, **meta)


# -- training, inference, evaluation on a tiny synthetic set -------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three 6-second 128x96 videos of two classes (seed 2: five actions, two videos with
    both classes, 60 + 44 frames with an actor; the look tells the classes apart too, so a
    few steps suffice), no test videos, so validation runs on the training videos; and a
    head trained on them for 28 steps on top of the shipped Sep3D."""
    out = tmp_path_factory.mktemp("head")
    res = _run("synth", "-o", out / "synth", "--train", "3", "--test", "0", "--size", "128x96",
               "--duration", "6,6", "--action-length", "2.4", "--num-classes", "2",
               "--appearance", "class", "--seed", "2", "-q")
    assert res.exit_code == 0, res.output
    res = _run("train", "sep3d-head", "--segmenter", SEGMENTER, "--data", out / "synth",
               "-o", out / "run", "--epochs", "2", "--clips-per-video", "9", "--batch-size", "2",
               "--val-videos", "0", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    return out


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_head_training_learns_its_training_clips(tiny):
    from vidseg_cli.datasets.segment_data import open_segment_dataset
    from vidseg_cli.models.checkpoint.format import read_checkpoint
    from vidseg_cli.runtime import seed_everything
    from vidseg_cli.train.head_metric import head_accuracy
    from vidseg_cli.train.segment_head import HeadRecipe, build_head_model, file_sha256

    log = _log(tiny / "run")
    assert len(log) == 2 and log[-1]["step"] == 28
    # validation = the training videos with ground-truth masks; the same frames before
    # training, with the head as the run initialised it (seed 0)
    seed_everything(0)
    ds = open_segment_dataset(tiny / "synth", target="classes")
    fresh, _ = build_head_model(str(SEGMENTER), ds.classes[1:], HeadRecipe())
    before = head_accuracy(fresh, ds.train, fresh.preprocess, torch.device("cpu"))
    after = log[-1]["val"]
    assert after["frames"] == before["frames"] >= 80
    counts = [n for _, n in before["per_class"].values()]
    assert len(counts) == 2  # both classes have frames
    majority = max(counts) / sum(counts)  # always guessing the commoner class (~58 %)
    assert after["accuracy_gt_masks"] >= majority + 0.1, (majority, before, after)
    assert after["loss"] < 0.85 * before["loss"], (before, after)
    ck = read_checkpoint(tiny / "run" / "best.ckpt")
    assert ck["model"] == "sep3d+head" and ck["classes"] == ["background", "foreground"]
    cfg = ck["config"]
    assert cfg["action_names"] == ["SlideHorizontal", "BounceVertical"]
    assert cfg["segmenter_checkpoint"]["sha256"] == file_sha256(SEGMENTER)
    assert ck["preprocess"]["clip_len"] == 16
    # the segmenter was frozen: its weights are the shipped ones
    seg = read_checkpoint(SEGMENTER)["state_dict"]
    for k, v in seg.items():
        assert torch.equal(ck["state_dict"]["segmenter." + k], v), k


def test_inference_action_scores_match_a_direct_computation(tiny):
    """Per frame: the largest region of the final (clip-averaged) argmax foreground, the box
    around it on the features of every clip covering the frame, softmax averaged."""
    from vidseg_cli.api.segment3d import Options, load
    from vidseg_cli.datasets.segment_data import decode_frames
    from vidseg_cli.models.sep3d import feature_frame_index, largest_component_boxes

    opts = Options(model="sep3d", weights=str(tiny / "run" / "last.ckpt"), device="cpu",
                            clip_stride=8, batch_size=3)
    seg = load(opts)
    frames = decode_frames(tiny / "synth" / "videos" / "synth_train_0002.mp4")[10:46]
    probs, actions = seg.predict(frames, with_actions=True)
    assert actions.shape == (36, 2)
    boxes, valid = largest_component_boxes(probs.argmax(axis=1) != 0)
    assert valid.any() and not valid.all()  # the action spans frames 13-36 of these
    assert (np.isnan(actions).all(axis=1) == ~valid).all()
    want, cnt = np.zeros((36, 2)), np.zeros(36)
    with torch.no_grad():
        for s in (0, 8, 16, 20):  # every 8 frames, the last clip ending on the last frame
            _, f = seg.model.forward_with_features(seg._input(frames[s : s + 16]))
            idx = feature_frame_index(16, f.shape[2])
            for j in range(16):
                if valid[s + j]:
                    lg = seg.head.classify(f[:, :, idx[j]], torch.tensor(boxes[s + j : s + j + 1]).float(),
                                           (96, 128))
                    want[s + j] += torch.softmax(lg, 1)[0].numpy()
                    cnt[s + j] += 1
    np.testing.assert_allclose(actions[valid], want[valid] / cnt[valid, None], atol=1e-5)
    np.testing.assert_allclose(actions[valid].sum(axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def scored(tiny):
    """segment-3d with the head checkpoint on the frames of the video with one action
    (SlideHorizontal, frames 23-46)."""
    fr = tiny / "v2.frames.h5"
    assert _run("extract-frames", tiny / "synth" / "videos" / "synth_train_0002.mp4", "-o", fr,
                "-q").exit_code == 0
    res = _run("segment-3d", fr, "--model", "sep3d", "--weights", tiny / "run" / "last.ckpt",
               "-o", tiny / "v2.scores.h5", "--clip-stride", "8", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    return tiny / "v2.scores.h5"


def test_segment3d_writes_action_scores_and_evaluate_reports_frame_map(tiny, scored):
    rec = store.read_scores(scored)  # validates the optional dataset against action_names
    acts = rec["action_scores"]
    assert rec.attrs["action_names"] == ["SlideHorizontal", "BounceVertical"]
    fg = (rec["probs"].argmax(axis=1) != 0).any(axis=(1, 2))
    assert (np.isnan(acts).all(axis=1) == ~fg).all() and fg.sum() >= 10
    gt = tiny / "synth" / "labels" / "synth_train_0002.labels.h5"
    res = _run("evaluate", scored, "--gt", gt, "--json", "-")
    assert res.exit_code == 0, res.output
    fm = json.loads(res.stdout)["frame_map"]
    assert fm["iou_threshold"] == 0.5
    assert fm["num_gt"] == {"SlideHorizontal": 24, "BounceVertical": 0}
    assert fm["num_detections"] == int(fg.sum()) and fm["boxes_without_scores"] == 0
    assert 0 < fm["frame_mAP"] <= 1 and fm["AP"]["SlideHorizontal"] == fm["frame_mAP"]
    assert fm["AP"]["BounceVertical"] is None  # no ground truth: left out of the mean
    res = _run("evaluate", scored, "--gt", gt)
    assert "frame-mAP" in res.stdout and "frame AP" in res.stdout


def test_head_with_other_actions_is_one_line_naming_the_file(tiny, scored, tmp_path):
    from vidseg_cli.models import MODELS, save_checkpoint
    from vidseg_cli.models.checkpoint.format import read_checkpoint

    ck = read_checkpoint(tiny / "run" / "last.ckpt")
    cfg = {**ck["config"], "action_names": ["run", "jump"]}
    m = MODELS.build("sep3d+head", **cfg)
    m.load_state_dict(ck["state_dict"])
    save_checkpoint(tmp_path / "other.ckpt", m, ck["classes"], preprocess=ck["preprocess"])
    fr = tiny / "v2.frames.h5"
    out = tmp_path / "o.scores.h5"
    res = _run("segment-3d", fr, "--model", "sep3d", "--weights", tmp_path / "other.ckpt", "-o", out,
               "--clip-stride", "16", "--device", "cpu", "-q")
    assert res.exit_code == 0, res.output
    res = _run("evaluate", out, "--gt", tiny / "synth" / "labels" / "synth_train_0002.labels.h5")
    assert res.exit_code == 2
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"vidseg evaluate: error: {out}: the action head's classes")
    assert "differ from the ground truth's classes" in line and "other.ckpt" in line
    # resuming a run whose checkpoint has other actions than the data names last.ckpt
    run = tmp_path / "run"
    shutil.copytree(tiny / "run", run)
    shutil.copy(tmp_path / "other.ckpt", run / "last.ckpt")
    res = _run("train", "sep3d-head", "--segmenter", SEGMENTER, "--data", tiny / "synth", "-o", run,
               "--resume", "--device", "cpu", "-q")
    assert res.exit_code == 2
    assert f"{run / 'last.ckpt'}: the head's action classes" in res.stderr


def test_bad_segmenter_and_data_are_one_line(tiny, tmp_path):
    res = _run("train", "sep3d-head", "--segmenter", ROOT / "sample_data" / "weights" / "3dfcn8s_synth.ckpt",
               "--data", tiny / "synth", "-o", tmp_path / "r", "-q")
    assert res.exit_code == 2
    assert "checkpoint is for model '3dfcn-8s', not 'sep3d'" in res.stderr
    res = _run("train", "sep3d-head", "--segmenter", SEGMENTER, "--data", tmp_path, "-o", tmp_path / "r", "-q")
    assert res.exit_code == 2 and "not a known segmentation dataset layout" in res.stderr


def test_frame_map_on_real_jhmdb_puppet_masks(refdata, tmp_path):
    """J-HMDB ground truth: one actor per frame, the video's class from its folder. Two
    videos (catch, clap) predicted exactly as their puppet masks: with each video's class
    scored highest every class has AP 1; with the scores swapped, each class's true
    positives rank below the other video's frames."""
    from vidseg_cli.datasets.masks import JHMDB_CLASSES, jhmdb_videos, read_jhmdb_mat
    from vidseg_cli.metrics.pixel_report import evaluate_pixel

    root = refdata / "jhmdb" / "puppet_mask"
    paths = {c: next(p for p in jhmdb_videos(root).values() if p.parent.name == c) for c in ("catch", "clap")}
    videos = {c: read_jhmdb_mat(p) for c, p in paths.items()}
    n = {c: v.num_frames for c, v in videos.items()}
    for case, swap in (("right", False), ("swapped", True)):
        out = tmp_path / case
        out.mkdir()
        for c, v in videos.items():
            fg = (v.masks > 0).astype(np.float16)  # T x H x W
            top = {"catch": "clap", "clap": "catch"}[c] if swap else c
            acts = np.full((v.num_frames, 21), 0.01, np.float32)
            acts[:, JHMDB_CLASSES.index(top)] = 0.8
            store.write(out / f"{v.video_id}.scores.h5", "scores",
                        {"probs": np.stack([1 - fg, fg], axis=1), "action_scores": acts},
                        video_id=v.video_id, num_frames=v.num_frames, fps=30.0,
                        class_names=["background", "foreground"], attrs={"action_names": list(JHMDB_CLASSES)})
        fm = evaluate_pixel([str(out)], str(root))["frame_map"]
        assert fm["num_gt"]["catch"] == n["catch"] and fm["num_gt"]["clap"] == n["clap"]
        assert fm["num_detections"] == n["catch"] + n["clap"]
        assert fm["AP"]["run"] is None  # no ground truth: left out of the mean
        if not swap:
            assert fm["AP"] == pytest.approx({k: (1.0 if k in ("catch", "clap") else None) for k in JHMDB_CLASSES})
            continue
        for c, other in (("catch", "clap"), ("clap", "catch")):
            # n_o false positives first, then the n_c true positives: trapezoids from (0, 1)
            n_c, n_o = n[c], n[other]
            want = sum((k / (n_o + k) + (k - 1) / (n_o + k - 1)) / 2 / n_c for k in range(1, n_c + 1))
            assert fm["AP"][c] == pytest.approx(want)
        assert fm["frame_mAP"] == pytest.approx((fm["AP"]["catch"] + fm["AP"]["clap"]) / 2)


# -- the joint fine-tune (--joint) on a smaller set and a tiny random Sep3D ---------------------
@pytest.fixture(scope="module")
def joint_set(tmp_path_factory):
    """Two 4-second 64x48 videos (seed 2: one with a 24-frame BounceVertical action, one
    without any) and a random width-1/16 Sep3D saved as a `train segment` checkpoint with
    8-frame clips (no config.json beside it: class weights not recorded)."""
    from vidseg_cli.models import MODELS, save_checkpoint

    out = tmp_path_factory.mktemp("joint")
    res = _run("synth", "-o", out / "synth", "--train", "2", "--test", "0", "--size", "64x48",
               "--duration", "4,4", "--action-length", "2.4", "--num-classes", "2",
               "--appearance", "class", "--seed", "2", "-q")
    assert res.exit_code == 0, res.output
    torch.manual_seed(0)
    seg = MODELS.build("sep3d", num_classes=2, width=1 / 16, crop_size=64)
    seg.preprocess = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 8}
    (out / "seg").mkdir()
    save_checkpoint(out / "seg" / "seg.ckpt", seg, ["background", "foreground"])
    return out


JOINT = ["--batch-size", "2", "--clips-per-video", "2", "--val-videos", "0", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def joint_runs(joint_set):
    """A joint run of 2 epochs (4 steps), the same run stopped after 1 epoch and resumed, and
    a frozen run of 2 steps."""
    base = ["train", "sep3d-head", "--segmenter", joint_set / "seg" / "seg.ckpt", "--data",
            joint_set / "synth", *JOINT]
    for name, more in (("a", ["--epochs", "2"]), ("b", ["--epochs", "1"]),
                       ("b", ["--epochs", "2", "--resume"]), ("frozen", ["--max-steps", "2"])):
        joint = [] if name == "frozen" else ["--joint", "--segmenter-lr-mult", "0.5"]
        res = _run(*base, "-o", joint_set / name, *joint, *more)
        assert res.exit_code == 0, res.output
    return joint_set


def test_joint_fine_tunes_the_segmenter_and_frozen_keeps_it(joint_runs):
    from vidseg_cli.models.checkpoint.format import read_checkpoint

    seg = read_checkpoint(joint_runs / "seg" / "seg.ckpt")["state_dict"]
    frozen = read_checkpoint(joint_runs / "frozen" / "last.ckpt")
    joint = read_checkpoint(joint_runs / "a" / "last.ckpt")
    assert frozen["train_state"]["step"] == 2 and joint["train_state"]["step"] == 4
    for k, v in seg.items():  # frozen: weights and BatchNorm statistics untouched
        assert torch.equal(frozen["state_dict"]["segmenter." + k], v), k
    params = dict(torch.nn.Module.named_parameters(_sep3d_like(seg)))
    moved = [k for k in params if not torch.equal(joint["state_dict"]["segmenter." + k], seg[k])]
    assert len(moved) == len(params), sorted(set(params) - set(moved))  # every weight trained
    bn = [k for k in seg if k.endswith("running_mean")]
    assert bn and all(not torch.equal(joint["state_dict"]["segmenter." + k], seg[k]) for k in bn)
    # the head trained in both; best.ckpt holds the fine-tuned segmenter too
    assert not torch.equal(frozen["state_dict"]["head.fc.weight"], joint["state_dict"]["head.fc.weight"])
    best = read_checkpoint(joint_runs / "a" / "best.ckpt")["state_dict"]
    assert any(not torch.equal(best["segmenter." + k], seg[k]) for k in params)
    # two Adam groups: the segmenter's rate is the head's times --segmenter-lr-mult
    g = joint["train_state"]["optimizer"]["param_groups"]
    assert len(g) == 2 and g[1]["lr"] == pytest.approx(0.5 * g[0]["lr"])
    assert g[0]["initial_lr"] == pytest.approx(3e-4) and g[1]["initial_lr"] == pytest.approx(1.5e-4)
    assert len(g[1]["params"]) == len(params)
    assert len(frozen["train_state"]["optimizer"]["param_groups"]) == 1
    cfg = json.loads((joint_runs / "a" / "config.json").read_text())["settings"]
    assert cfg["recipe"]["joint"] is True and cfg["recipe"]["segmenter_lr_mult"] == 0.5
    assert cfg["segmentation_loss"]["target"] == "foreground"
    assert cfg["segmentation_loss"]["class_weights"] == [1.0, 1.0]  # not recorded: the default
    assert "not recorded" in cfg["segmentation_loss"]["class_weights_from"]
    before = cfg["val_before_training"]
    for rec in [before] + [r["val"] for r in _log(joint_runs / "a")]:
        assert set(rec) == {"accuracy_gt_masks", "loss", "frames", "foreground_iou_clips"}
        assert rec["frames"] == 24 and 0 <= rec["foreground_iou_clips"] <= 1
    assert "foreground_iou_clips" not in _log(joint_runs / "frozen")[-1]["val"]


def test_joint_with_frozen_batchnorm_statistics(joint_set):
    """--segmenter-bn frozen: every segmenter weight (BatchNorm scales and shifts included)
    still trains, its BatchNorm running statistics stay those it was trained with."""
    from vidseg_cli.models.checkpoint.format import read_checkpoint

    res = _run("train", "sep3d-head", "--segmenter", joint_set / "seg" / "seg.ckpt", "--data",
               joint_set / "synth", *JOINT, "-o", joint_set / "bnfrozen", "--joint",
               "--segmenter-lr-mult", "0.5", "--segmenter-bn", "frozen", "--max-steps", "2")
    assert res.exit_code == 0, res.output
    seg = read_checkpoint(joint_set / "seg" / "seg.ckpt")["state_dict"]
    got = read_checkpoint(joint_set / "bnfrozen" / "last.ckpt")["state_dict"]
    stats = [k for k in seg if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats and all(torch.equal(got["segmenter." + k], seg[k]) for k in stats)
    params = dict(torch.nn.Module.named_parameters(_sep3d_like(seg)))
    assert all(not torch.equal(got["segmenter." + k], seg[k]) for k in params)
    cfg = json.loads((joint_set / "bnfrozen" / "config.json").read_text())["settings"]
    assert cfg["recipe"]["segmenter_bn"] == "frozen"
    bad = _run("train", "sep3d-head", "--segmenter", joint_set / "seg" / "seg.ckpt", "--data",
               joint_set / "synth", *JOINT, "-o", joint_set / "bnbad", "--segmenter-bn", "frozen")
    assert bad.exit_code == 2 and "only with --joint" in bad.output


def _sep3d_like(state_dict):
    """A width-1/16 Sep3D to name the parameters (not buffers) of `state_dict`."""
    from vidseg_cli.models.sep3d import Sep3D

    m = Sep3D(num_classes=2, width=1 / 16, crop_size=64)
    assert set(m.state_dict()) == set(state_dict)
    return m


def test_joint_resume_is_exact_and_refuses_a_switch(joint_runs, tmp_path):
    from vidseg_cli.models.checkpoint.format import read_checkpoint

    a = read_checkpoint(joint_runs / "a" / "last.ckpt")
    b = read_checkpoint(joint_runs / "b" / "last.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    la, lb = _log(joint_runs / "a"), _log(joint_runs / "b")
    assert [r["loss"] for r in la] == [r["loss"] for r in lb] and [r["val"] for r in la] == [r["val"] for r in lb]
    # a joint run resumed without --joint, and a frozen one with it: one line naming last.ckpt
    for name, joint in (("a", []), ("frozen", ["--joint"])):
        run = tmp_path / name
        shutil.copytree(joint_runs / name, run)
        res = _run("train", "sep3d-head", "--segmenter", joint_runs / "seg" / "seg.ckpt", "--data",
                   joint_runs / "synth", "-o", run, *JOINT, *joint, "--epochs", "3", "--resume")
        assert res.exit_code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vidseg train sep3d-head: error: {run / 'last.ckpt'}: ")
        assert ("without" if joint else "with") + " --joint" in lines[0]


def _joint_batch(seed=0):
    """Two 8-frame 48x64 clips: the first with an actor of action 1 in frames 2-6 (and a
    padded, ignored corner), the second without one."""
    from vidseg_cli.datasets.segment_data import IGNORE
    from vidseg_cli.train.head_loss import head_frame_targets, segmentation_target

    g = torch.Generator().manual_seed(seed)
    y = np.zeros((2, 8, 48, 64), np.uint8)
    y[0, 2:7, 10:30, 20:36] = 2
    y[0, :, :4, :4] = IGNORE
    boxes, target = head_frame_targets(y, 2)
    return {"x": torch.randn(2, 3, 8, 48, 64, generator=g), "boxes": torch.from_numpy(boxes),
            "target": torch.from_numpy(target), "seg_target": torch.from_numpy(segmentation_target(y, "foreground"))}


def test_segmentation_target_by_hand():
    from vidseg_cli.train.head_loss import segmentation_target

    y = np.array([[0, 1, 3, 255, 0]], np.uint8)
    assert segmentation_target(y, "foreground").tolist() == [[0, 1, 1, 255, 0]]
    assert segmentation_target(y, "classes").tolist() == [[0, 1, 3, 255, 0]]
    assert segmentation_target(y, "classes").dtype == np.int64


def test_joint_loss_adds_the_weighted_segmentation_loss_and_reaches_every_weight():
    from vidseg_cli.models import MODELS
    from vidseg_cli.train.head_loss import head_loss, joint_loss, joint_loss_terms

    torch.manual_seed(0)
    model = MODELS.build("sep3d+head", segmenter={"num_classes": 2, "width": 1 / 16, "crop_size": 64},
                         action_names=["a", "b"], hidden=8).set_segmenter_trainable(True)
    model.train()
    assert model.segmenter.training and all(p.requires_grad for p in model.segmenter.parameters())
    batch = _joint_batch()
    weight = torch.tensor([1.0, 3.0])
    # the segmentation term by brute force: weighted mean of -log p_y over labelled pixels
    model.eval()  # BatchNorm's running statistics: the same numbers in every forward pass below
    head, seg = (float(t.detach()) for t in joint_loss_terms(model, batch, weight))
    with torch.no_grad():
        lp = torch.log_softmax(model.segmenter(batch["x"]), dim=1)  # B x 2 x T x H x W
    num = den = 0.0
    t = batch["seg_target"]
    for c in (0, 1):
        m = t == c
        num += float(-(lp[:, c][m]).sum()) * float(weight[c])
        den += float(m.sum()) * float(weight[c])
    assert int((t == 255).sum()) == 8 * 16  # the padded corner of clip 0 is ignored
    assert seg == pytest.approx(num / den, rel=1e-5)
    # the head term is head_loss's (which skips the clip without an actor: eval mode, same numbers)
    assert head == pytest.approx(float(head_loss(model, batch).detach()), rel=1e-5)
    for w in (0.0, 1.0, 2.5):
        assert float(joint_loss(model, batch, weight, w).detach()) == pytest.approx(head + w * seg, rel=1e-5)
    # gradients: the head's loss alone reaches the encoder and decoder through the cropped
    # features but not the per-pixel classifier; the segmentation term reaches that too
    model.train()
    for w, classifier_moves in ((0.0, False), (1.0, True)):
        model.zero_grad(set_to_none=True)
        joint_loss(model, batch, weight, w).backward()
        grads = {n: p.grad for n, p in model.segmenter.named_parameters()}
        assert all(g is not None for g in grads.values())
        assert all(float(g.abs().sum()) > 0 for n, g in grads.items() if n.startswith("encoder.layer1."))
        cls = float(grads["decoder.classifier.weight"].abs().sum())
        assert (cls > 0) == classifier_moves, cls
    # frozen (the default): no gradient reaches the segmenter, and it stays in eval mode
    model.set_segmenter_trainable(False).train()
    assert not model.segmenter.training and not any(p.requires_grad for p in model.segmenter.parameters())


def test_head_accuracy_foreground_iou_matches_a_direct_count(joint_set):
    """foreground_iou_clips: each frame from the first back-to-back 8-frame clip covering it
    (0, 8, ..., 32 for 40 frames), one clip at a time; the accuracy is the same as without."""
    from vidseg_cli.datasets.segment_data import open_segment_dataset
    from vidseg_cli.metrics.masks import foreground_counts
    from vidseg_cli.models.preprocess import normalize
    from vidseg_cli.train.head_metric import head_accuracy
    from vidseg_cli.train.segment_head import HeadRecipe, build_head_model

    ds = open_segment_dataset(joint_set / "synth", target="classes")
    torch.manual_seed(0)
    model, _ = build_head_model(str(joint_set / "seg" / "seg.ckpt"), ds.classes[1:], HeadRecipe(hidden=8))
    model.eval()
    # a random segmenter says background everywhere: move its foreground bias to the median
    frames, _ = ds.train[1].load()
    x = normalize(frames[:8], [127.5] * 3, [64.0] * 3)[None]
    with torch.no_grad():
        lg = model.segmenter(x)
        model.segmenter.decoder.classifier.bias[1] += float((lg[:, 0] - lg[:, 1]).median())
    pre = model.preprocess
    res = head_accuracy(model, ds.train, pre, torch.device("cpu"), batch_size=3, segmentation=True)
    plain = head_accuracy(model, ds.train, pre, torch.device("cpu"), batch_size=3)
    assert {k: plain[k] for k in ("frames", "per_class")} == {k: res[k] for k in ("frames", "per_class")}
    assert res["accuracy_gt_masks"] == pytest.approx(plain["accuracy_gt_masks"])
    assert res["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    inter = union = 0
    for v in ds.train:
        frames, labels = v.load()
        assert len(frames) == 40
        pred = np.zeros(labels.shape, np.uint8)
        for s in range(0, 40, 8):
            xx = normalize(frames[s : s + 8], pre["mean"], pre["std"])[None]
            with torch.no_grad():
                pred[s : s + 8] = model.segmenter(xx)[0].argmax(dim=0).numpy()
        i, u = foreground_counts(labels, pred)
        inter, union = inter + i, union + u
    assert union > 0 and 0 < inter < union  # neither empty nor trivial
    assert res["foreground_iou_clips"] == pytest.approx(inter / union, abs=1e-3)
    assert res["segmented_frames"] == 80
    # A frozen segmenter's features are kept between calls: the second call gives the same
    # figures without running it, and the head alone changes them.
    cache: dict = {}
    first = head_accuracy(model, ds.train, pre, torch.device("cpu"), batch_size=3, feature_cache=cache)
    assert first == plain and cache
    runs = []
    hook = model.segmenter.register_forward_hook(lambda *a: runs.append(1))
    assert head_accuracy(model, ds.train, pre, torch.device("cpu"), batch_size=3, feature_cache=cache) == plain
    assert not runs
    with torch.no_grad():
        model.head.fc.bias.add_(torch.linspace(-3, 3, model.head.fc.bias.numel()))
    changed = head_accuracy(model, ds.train, pre, torch.device("cpu"), batch_size=3, feature_cache=cache)
    assert changed["loss"] != pytest.approx(plain["loss"]) and not runs
    hook.remove()


def test_segmenter_class_weights_where_recorded(tmp_path):
    from vidseg_cli.models import MODELS, save_checkpoint
    from vidseg_cli.train.head_loss import DEFAULT_SEG_CLASS_WEIGHTS, segmenter_class_weights
    from vidseg_cli.train.segment import get_recipe

    assert DEFAULT_SEG_CLASS_WEIGHTS == get_recipe("sep3d", "synthetic").class_weights
    w, src = segmenter_class_weights(SEGMENTER)  # shipped best.ckpt, copied alone
    assert w == DEFAULT_SEG_CLASS_WEIGHTS == (1.0, 1.0) and "not recorded" in src
    cfg = {"num_classes": 2, "width": 1 / 16, "crop_size": 32}
    m = MODELS.build("sep3d", **cfg)
    classes = ["background", "foreground"]
    state = {"settings": {"task": "segment", "recipe": {"class_weights": [1.0, 5.0]}}}
    save_checkpoint(tmp_path / "last.ckpt", m, classes, train_state=state)
    assert segmenter_class_weights(tmp_path / "last.ckpt") == ((1.0, 5.0), f"{tmp_path / 'last.ckpt'} (training state)")
    save_checkpoint(tmp_path / "best.ckpt", m, classes)
    run = {"model": "sep3d", "model_config": m.model_config, "classes": classes,
           "settings": {"task": "segment", "recipe": {"class_weights": None}}}
    (tmp_path / "config.json").write_text(json.dumps(run))
    assert segmenter_class_weights(tmp_path / "best.ckpt") == (None, str(tmp_path / "config.json"))
    run["model_config"] = {**m.model_config, "width": 0.125}  # another run's config: not used
    (tmp_path / "config.json").write_text(json.dumps(run))
    assert segmenter_class_weights(tmp_path / "best.ckpt")[0] == DEFAULT_SEG_CLASS_WEIGHTS


def test_joint_options_are_checked(joint_set, tmp_path):
    from vidseg_cli.models import MODELS, save_checkpoint

    base = ["train", "sep3d-head", "--segmenter", joint_set / "seg" / "seg.ckpt", "--data",
            joint_set / "synth", "-o", tmp_path / "r", "--device", "cpu", "-q"]
    for bad in (["--segmenter-lr-mult", "0"], ["--segmenter-lr-mult", "-1"], ["--seg-loss-weight", "-0.5"]):
        res = _run(*base, "--joint", *bad)
        assert res.exit_code == 2 and f"Invalid value for '{bad[0]}'" in res.stderr, res.output
    for only in (["--segmenter-lr-mult", "0.5"], ["--seg-loss-weight", "0"]):
        res = _run(*base, *only)
        assert res.exit_code == 2
        assert res.stderr.strip() == ("vidseg train sep3d-head: error: --segmenter-lr-mult, "
                                      "--seg-loss-weight and --segmenter-bn apply only with --joint")
    assert not (tmp_path / "r").exists()
    # a segmenter of other classes than foreground or the dataset's: no segmentation loss
    torch.manual_seed(0)
    m = MODELS.build("sep3d", num_classes=3, width=1 / 16, crop_size=64)
    m.preprocess = {"mean": [127.5] * 3, "std": [64.0] * 3, "short_side": None, "clip_len": 8}
    other = save_checkpoint(tmp_path / "three.ckpt", m, ["background", "x", "y"])
    res = _run(*base[:3], other, *base[4:], "--joint")
    assert res.exit_code == 2
    assert res.stderr.strip().startswith(f"vidseg train sep3d-head: error: {other}: the segmenter's classes")
