"""FSN stages: targets and samplers, sliding the FSN over a video, localize (fsn, wfsn,
two-stream fusion, bad inputs) and a shortened learning check through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidseg_cli import store
from vidseg_cli.datasets import fsn_data as fd
from vidseg_cli.datasets.temporal_gt import TemporalGT
from vidseg_cli.infer.fsn import slide_fsn, wfsn_frame_probs, wfsn_predict
from vidseg_cli.models import MODELS, save_checkpoint
from vidseg_cli.models.fsn import upsample_to_frames
from vidseg_cli.stages.grouping import group_frames, run_scores
from vidseg_cli.train.wfsn import _segment_sample

torch.set_num_threads(1)
CLASSES = ["background", "a", "b"]


def _gt(videos, segments, labels):
    return TemporalGT(path="gt", format="activitynet", subset="training", classes=["a", "b"],
                      class_ids=[1, 2], video=np.array(videos), segments=np.array(segments, float),
                      label=np.array(labels))


def test_frame_targets_overlap_and_video_labels():
    gt = _gt(["v", "v"], [[0.2, 0.6], [0.5, 0.8]], [0, 1])  # fps 10: frames 2-5 a, 5-7 b
    y = fd.frame_targets(10, 10.0, gt, "v")
    assert y.shape == (10, 3)
    np.testing.assert_allclose(y.sum(1), 1)
    assert y[0].tolist() == [1, 0, 0] and y[3].tolist() == [0, 1, 0]
    assert y[5].tolist() == [0, 0.5, 0.5]  # both actors act: uniform over the two classes
    assert y[8].tolist() == [1, 0, 0]
    assert fd.video_labels(gt, "v").tolist() == [1, 1] and fd.video_labels(gt, "w").tolist() == [0, 0]
    assert fd.dominant(y) == 1


def test_clip_windows_keep_clips_with_action():
    T = 60
    y = np.zeros((T, 3), np.float32)
    y[:, 0] = 1
    y[40:46] = [0, 0, 1]  # 6 action frames of class 2
    centers = np.arange(12) * 5 + 2
    w = fd.clip_windows(centers, 5, y, num_snippets=3, min_action_frames=5, video=0)
    # windows of 3 snippets (15 frames) holding >= 5 of frames 40..45
    assert [x.first for x in w] == [6, 7, 8]
    assert all(x.label == 2 for x in w) and w[0].frames == (30, 45)
    assert fd.clip_windows(centers, 5, y, 3, 0, 0)[0].frames == (0, 15)
    assert len(fd.clip_windows(centers, 5, y, 3, 0, 0)) == 10


def test_balanced_choice_and_segments():
    rng = np.random.default_rng(0)
    groups = [0] * 95 + [1] * 5
    pick = fd.balanced_choice(rng, groups, 2000)
    frac = np.mean(np.asarray(groups)[pick] == 1)
    assert 0.45 < frac < 0.55
    feats = np.arange(40, dtype=np.float32)[:, None]
    s = _segment_sample(rng, feats, 100)  # fewer snippets than segments: repeats, in order
    assert s.shape == (100, 1) and (np.diff(s[:, 0]) >= 0).all() and s[0, 0] == 0 and s[-1, 0] == 39
    s = _segment_sample(rng, np.arange(1000, dtype=np.float32)[:, None], 100)
    assert ((s[:, 0] // 10) == np.arange(100)).all()  # one from each segment


def test_slide_fsn_windows_without_overlap():
    torch.manual_seed(0)
    m = MODELS.build("fsn", in_features=6, num_classes=3, hidden=8).eval()
    f = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    c = np.arange(10) * 5 + 2
    whole = slide_fsn(m, f, c, 52, window=None)
    with torch.no_grad():
        ref = m.probs(torch.from_numpy(f)[None], snippet=5, num_frames=52)[0].T.numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-6)
    win = slide_fsn(m, f, c, 52, window=4)
    with torch.no_grad():
        s = torch.cat([m.snippet_logits(torch.from_numpy(f[i:i + 4])[None]) for i in (0, 4, 8)], -1)
        want = upsample_to_frames(s, c, 52)[0].softmax(0).T.numpy()
    np.testing.assert_allclose(win, want, atol=1e-6)
    assert not np.allclose(win, whole)  # the windows do not see across their borders
    empty = slide_fsn(m, f[:0], c[:0], 7)
    assert empty.shape == (7, 3) and (empty[:, 0] == 1).all()
    w = MODELS.build("wfsn", in_features=6, num_classes=2, hidden=8).eval()
    p = wfsn_frame_probs(w, f, c, 52)
    assert p.shape == (52, 3) and (p[:, 0] == 0).all()
    np.testing.assert_allclose(p[:, 1:].sum(1), 1, atol=1e-5)


def test_run_scores_contrast_by_brute_force():
    rng = np.random.default_rng(1)
    p = rng.random(40)
    csum = np.concatenate([[0], np.cumsum(p)])
    runs = np.array([[0, 40], [0, 8], [5, 9], [30, 40], [12, 13], [10, 30]])
    mean = run_scores(csum, runs, "mean")
    contrast = run_scores(csum, runs, "contrast")
    for (a, b), m, c in zip(runs, mean, contrast):
        inner = p[a:b].mean()
        L = max(1, int(round(0.25 * (b - a))))
        out = np.concatenate([p[max(0, a - L):a], p[b:b + L]])  # what lies in the video
        assert np.isclose(m, inner)
        assert np.isclose(c, inner - out.mean() if len(out) else 0.0), (a, b)
    assert contrast[0] == 0  # the whole video stands out from nothing
    with pytest.raises(ValueError, match="score"):
        run_scores(csum, runs, "median")


def test_contrast_ranks_a_peak_above_a_plateau():
    # WFSN-like class columns of two videos (no background class: some action is always
    # probable). Video A is flat at 0.6, no action stands out; video B has a real action on
    # frames 20-29 at 0.55 over 0.2. Detections are ranked across videos for AP: by mean,
    # A's whole-video run (0.6) comes before B's action (0.55); by contrast, B's action
    # (0.55 - 0.2) comes first and A's run, with nothing outside it, scores 0.
    a = np.full(60, 0.6)
    b = np.full(60, 0.2)
    b[20:30] = 0.55
    def top(p, score):
        seg, lab, sc = group_frames(np.stack([np.zeros(60), p, 1 - p], 1), background=0, score=score,
                                    classes=[1])
        assert set(lab.tolist()) == {1}
        return seg[0].tolist(), float(sc[0])
    (sa, ma), (sb, mb) = top(a, "mean"), top(b, "mean")
    assert sa == [0, 60] and sb == [20, 30] and ma > mb
    (sa, ca), (sb, cb) = top(a, "contrast"), top(b, "contrast")
    assert sa == [0, 60] and ca == 0 and sb == [20, 30] and np.isclose(cb, 0.35)
    # `classes` picks columns; without it, every column but the background
    assert set(group_frames(np.stack([np.zeros(60), b, 1 - b], 1), background=0)[1].tolist()) == {1, 2}


def test_wfsn_predict_keeps_the_pooled_video_score():
    torch.manual_seed(0)
    w = MODELS.build("wfsn", in_features=6, num_classes=3, hidden=8).eval()
    f = np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32)
    c = np.arange(10) * 5 + 2
    probs, video = wfsn_predict(w, f, c, 52)
    with torch.no_grad():
        x = torch.from_numpy(f)[None]
        np.testing.assert_allclose(probs[:, 1:], w.frame_scores(x, centers=c, num_frames=52)[0].T.numpy(),
                                   atol=1e-6)
        np.testing.assert_allclose(video, w(x)[0].softmax(0).numpy(), atol=1e-6)  # Eq. 2-3, all snippets
    np.testing.assert_allclose(wfsn_frame_probs(w, f, c, 52), probs)
    p0, v0 = wfsn_predict(w, f[:0], c[:0], 7)
    assert (p0 == 0).all() and np.allclose(v0, 1 / 3)


def _features(path, vid, feats, num_frames, backbone="resnet18", stream="rgb"):
    n = len(feats)
    store.write_features(path, feats, np.arange(n) * 5 + 2, video_id=vid, num_frames=num_frames, fps=10.0,
                         attrs={"snippet": 5, "stride": 5, "backbone": backbone, "stream": stream})


def test_localize_fsn_wfsn_fuse_and_bad_inputs(tmp_path, cli):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    fsn = MODELS.build("fsn", in_features=6, num_classes=3, hidden=8)
    save_checkpoint(tmp_path / "fsn.ckpt", fsn, CLASSES)
    save_checkpoint(tmp_path / "flow.ckpt", MODELS.build("fsn", in_features=4, num_classes=3, hidden=8), CLASSES)
    save_checkpoint(tmp_path / "wfsn.ckpt", MODELS.build("wfsn", in_features=6, num_classes=2, hidden=8), CLASSES)
    (tmp_path / "rgb").mkdir()
    (tmp_path / "flow").mkdir()
    for v in ("v1", "v2"):
        _features(tmp_path / "rgb" / f"{v}.features.h5", v, rng.normal(size=(9, 6)), 47)
        _features(tmp_path / "flow" / f"{v}.features.h5", v, rng.normal(size=(9, 4)), 47, stream="flow")
    rgb = sorted((tmp_path / "rgb").glob("*.h5"))
    r = cli("localize", *rgb, "--weights", tmp_path / "fsn.ckpt", "-o", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output
    det = store.read_detections(tmp_path / "out" / "v1.detections.h5")
    fs = store.read_frame_scores(tmp_path / "out" / "v1.frame_scores.h5")
    assert fs["probs"].shape == (47, 3) and det.class_names == CLASSES
    want = slide_fsn(fsn.eval(), store.read_features(rgb[0])["features"], np.arange(9) * 5 + 2, 47)
    np.testing.assert_allclose(fs["probs"], want, atol=1e-6)
    assert len(det["scores"]) > 0 and set(det["labels"].tolist()) <= {1, 2}
    assert det.attrs["method"] == "fsn" and det.attrs["nms_iou"] == pytest.approx(0.4)
    # two streams: the average of the two frame scores
    r = cli("localize", *rgb, "--weights", tmp_path / "fsn.ckpt", "--fuse", tmp_path / "flow",
            "--fuse-weights", tmp_path / "flow.ckpt", "-o", tmp_path / "fused", "-q")
    assert r.exit_code == 0, r.output
    f2 = store.read_frame_scores(tmp_path / "fused" / "v2.frame_scores.h5")["probs"]
    s_rgb = store.read_frame_scores(tmp_path / "out" / "v2.frame_scores.h5")["probs"]
    assert not np.allclose(f2, s_rgb) and np.allclose(f2.sum(1), 1, atol=1e-5)
    # wfsn: background column 0; runs scored by contrast unless --segment-score mean
    r = cli("localize", rgb[0], "--method", "wfsn", "--weights", tmp_path / "wfsn.ckpt", "-o", tmp_path / "w.h5", "-q")
    assert r.exit_code == 0, r.output
    wp = store.read_frame_scores(tmp_path / "w.frame_scores.h5")["probs"]
    assert (wp[:, 0] == 0).all()
    wd = store.read_detections(tmp_path / "w.h5")
    assert wd.attrs["segment_score"] == "contrast" and wd.attrs["video_threshold"] == 0
    video = np.asarray(wd.attrs["video_scores"])
    assert video.shape == (2,) and np.isclose(video.sum(), 1)
    want = group_frames(wp, background=0, score="contrast")
    np.testing.assert_allclose(wd["scores"], want[2])
    assert det.attrs["segment_score"] == "mean"  # fsn's default, FSN 4.2
    r = cli("localize", rgb[0], "--method", "wfsn", "--weights", tmp_path / "wfsn.ckpt", "--segment-score", "mean",
            "-o", tmp_path / "wm" / "w.h5", "-q")
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(store.read_detections(tmp_path / "wm" / "w.h5")["scores"],
                               group_frames(wp, background=0)[2])
    # --video-threshold: only the classes the video-level score recognises (the top one always)
    r = cli("localize", rgb[0], "--method", "wfsn", "--weights", tmp_path / "wfsn.ckpt", "--video-threshold", "0.99",
            "-o", tmp_path / "wv" / "w.h5", "-q")
    assert r.exit_code == 0, r.output
    assert set(store.read_detections(tmp_path / "wv" / "w.h5")["labels"].tolist()) == {int(video.argmax()) + 1}
    r = cli("localize", rgb[0], "--weights", tmp_path / "fsn.ckpt", "--video-threshold", "0.5", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "--video-threshold is for --method wfsn" in r.output
    # features of another size than the checkpoint expects: one line naming both files
    r = cli("localize", tmp_path / "flow" / "v1.features.h5", "--weights", tmp_path / "fsn.ckpt",
            "-o", tmp_path / "bad.h5")
    assert r.exit_code == 2
    assert "flow/v1.features.h5" in r.output and "fsn.ckpt expects 6" in r.output
    assert not (tmp_path / "bad.h5").exists()
    # a checkpoint of another model, a garbage weights file
    r = cli("localize", rgb[0], "--weights", tmp_path / "wfsn.ckpt", "-o", tmp_path / "bad.h5")
    assert r.exit_code == 2 and "wfsn.ckpt" in r.output and "'wfsn'" in r.output
    (tmp_path / "junk.ckpt").write_text("junk")
    r = cli("localize", rgb[0], "--weights", tmp_path / "junk.ckpt", "-o", tmp_path / "bad.h5")
    assert r.exit_code == 2 and "junk.ckpt" in r.output
    # one bad input of two: exit 1, the good one done
    r = cli("localize", rgb[0], tmp_path / "flow" / "v2.features.h5", "--weights", tmp_path / "fsn.ckpt",
            "-o", tmp_path / "mixed", "-q")
    assert r.exit_code == 1 and (tmp_path / "mixed" / "v1.detections.h5").exists()


def _evaluate_json(cli, tmp_path, files, gt, name):
    out = tmp_path / f"{name}.json"
    r = cli("evaluate", *files, "--gt", gt, "--subset", "testing", "--json", out)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())


def _random_frame_scores_map(cli, tmp_path, gt):
    """Frame mAP of random scores on the videos of tmp_path/loc (same videos, same metric)."""
    rng = np.random.default_rng(0)
    (tmp_path / "rand").mkdir()
    for p in sorted((tmp_path / "loc").glob("*.frame_scores.h5")):
        rec = store.read_frame_scores(p)
        store.write_frame_scores(tmp_path / "rand" / p.name, rng.random(rec["probs"].shape), video_id=rec.video_id,
                                 num_frames=rec.num_frames, fps=rec.fps, class_names=rec.class_names)
    return _evaluate_json(cli, tmp_path, sorted((tmp_path / "rand").glob("*.h5")), gt, "rand")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic set, its frames and a flow backbone trained for a few steps."""
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli as group

    def cli(*args):
        return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)

    root = tmp_path_factory.mktemp("fsn")
    d, f = root / "synth", root / "frames"
    assert cli("synth", "-o", d, "--train", "8", "--test", "4", "--size", "64x48", "--duration", "8,10",
               "--num-classes", "2", "--seed", "3", "-q").exit_code == 0
    assert cli("extract-frames", *sorted((d / "videos").glob("*.mp4")), "-o", f, "-q").exit_code == 0
    r = cli("train", "backbone", f, "--gt", d, "--stream", "flow", "--width", "0.125", "--epochs", "1",
            "--steps-per-epoch", "8", "--batch-size", "16", "-o", root / "bb", "-q")
    assert r.exit_code == 0, r.output
    return root


def test_learning_check_shortened(tiny, tmp_path, cli):
    """synth -> extract-frames -> train backbone (flow) -> extract-features -> train fsn ->
    localize -> evaluate: the loss falls and frame mAP beats random scores clearly."""
    d, f, x = tiny / "synth", tiny / "frames", tmp_path / "feat"
    r = cli("extract-features", f, "--weights", tiny / "bb" / "last.ckpt", "-o", x, "-q")
    assert r.exit_code == 0, r.output
    assert store.read_features(next(x.glob("*.h5"))).attrs["flow_method"] == "farneback"  # the backbone's
    r = cli("train", "fsn", x, "--gt", d, "--epochs", "4", "--steps-per-epoch", "40", "--lr", "0.05",
            "--hidden", "64", "--min-action-frames", "0", "-o", tmp_path / "fsn", "-q")
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (tmp_path / "fsn" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    test = sorted(x.glob("synth_test_*.h5"))
    r = cli("localize", *test, "--weights", tmp_path / "fsn" / "last.ckpt", "-o", tmp_path / "loc", "-q")
    assert r.exit_code == 0, r.output
    got = _evaluate_json(cli, tmp_path, sorted((tmp_path / "loc").glob("*.frame_scores.h5")), d, "fsn")
    rand = _random_frame_scores_map(cli, tmp_path, d)
    # a few backbone steps on 8 tiny videos: about 0.3 against 0.2 (the full check is in docs/fsn.md)
    assert got["mAP"] > rand["mAP"] + 0.05, (got["mAP"], rand["mAP"])


def test_learning_check_shortened_rgb_on_class_appearance(tmp_path, cli):
    """The RGB stream's check, shortened: on `synth --appearance class` single frames carry
    the class, and a few backbone steps give features the FSN learns from."""
    d, f, x = tmp_path / "synth", tmp_path / "frames", tmp_path / "feat"
    # 96x72, not the flow test's 64x48: at 64x48 the actors are 4-7 px and 30 steps see little
    assert cli("synth", "-o", d, "--train", "8", "--test", "4", "--size", "96x72", "--duration", "8,10",
               "--num-classes", "2", "--seed", "3", "--appearance", "class", "-q").exit_code == 0
    assert cli("extract-frames", *sorted((d / "videos").glob("*.mp4")), "-o", f, "-q").exit_code == 0
    r = cli("train", "backbone", f, "--gt", d, "--width", "0.125", "--epochs", "1", "--steps-per-epoch", "30",
            "--batch-size", "16", "-o", tmp_path / "bb", "-q")
    assert r.exit_code == 0, r.output
    r = cli("extract-features", f, "--weights", tmp_path / "bb" / "last.ckpt", "-o", x, "-q")
    assert r.exit_code == 0, r.output
    assert store.read_features(next(x.glob("*.h5"))).attrs["stream"] == "rgb"
    r = cli("train", "fsn", x, "--gt", d, "--epochs", "4", "--steps-per-epoch", "40", "--lr", "0.05",
            "--hidden", "64", "--min-action-frames", "0", "-o", tmp_path / "fsn", "-q")
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (tmp_path / "fsn" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    test = sorted(x.glob("synth_test_*.h5"))
    r = cli("localize", *test, "--weights", tmp_path / "fsn" / "last.ckpt", "-o", tmp_path / "loc", "-q")
    assert r.exit_code == 0, r.output
    got = _evaluate_json(cli, tmp_path, sorted((tmp_path / "loc").glob("*.frame_scores.h5")), d, "fsn")
    rand = _random_frame_scores_map(cli, tmp_path, d)
    # 30 backbone steps on 8 tiny videos: about 0.5 against 0.2 (the full check is in docs/fsn.md)
    assert got["mAP"] > rand["mAP"] + 0.15, (got["mAP"], rand["mAP"])


def test_end_to_end_writes_backbone_and_fsn_checkpoints(tiny, tmp_path, cli):
    d, f = tiny / "synth", tiny / "frames"
    r = cli("train", "fsn", f, "--end-to-end", "--backbone", tiny / "bb" / "last.ckpt", "--stream", "flow",
            "--gt", d, "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--clip-snippets", "3",
            "--lr", "0.01", "-o", tmp_path / "e2e", "-q")
    assert r.exit_code == 0, r.output
    for name in ("best.ckpt", "last.ckpt", "backbone.ckpt", "fsn.ckpt"):
        assert (tmp_path / "e2e" / name).exists()
    # the split checkpoints run as extract-features and localize
    v = sorted(f.glob("synth_test_*.h5"))[0]
    r = cli("extract-features", v, "--weights", tmp_path / "e2e" / "backbone.ckpt", "-o", tmp_path / "v.h5", "-q")
    assert r.exit_code == 0, r.output
    r = cli("localize", tmp_path / "v.h5", "--weights", tmp_path / "e2e" / "fsn.ckpt", "-o", tmp_path / "d.h5", "-q")
    assert r.exit_code == 0, r.output
    assert store.read_detections(tmp_path / "d.h5").attrs["window_snippets"] == 3
    # the rgb stream cannot start from a flow backbone
    r = cli("train", "fsn", f, "--end-to-end", "--backbone", tiny / "bb" / "last.ckpt", "--gt", d,
            "-o", tmp_path / "bad")
    assert r.exit_code == 2 and "last.ckpt" in r.output and "10-channel" in r.output
