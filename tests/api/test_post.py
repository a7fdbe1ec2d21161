"""hmm-fit, hmm-smooth and crf-refine through the CLI on small files: outputs, pairing,
skip/overwrite, and every bad input as one line naming the file, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.stages.hmm.fit import TransitionCounts
from vidseg_cli.stages.hmm.smooth import smooth

NAMES = ["background", "walk", "run"]


def _labels(path, labels, names=NAMES, video_id=None):
    store.write_labels(path, np.asarray(labels, np.uint8), class_names=names,
                       video_id=video_id or path.name.split(".")[0],
                       num_frames=len(labels), fps=25.0)
    return path


def _scores(path, probs, names=NAMES, video_id=None, **attrs):
    probs = np.asarray(probs)
    writer = store.write_scores if probs.ndim == 4 else store.write_frame_scores
    writer(path, probs, class_names=names, video_id=video_id or path.name.split(".")[0],
           num_frames=probs.shape[0], fps=25.0, attrs=attrs or None)
    return path


def _frames(path, t, h, w, video_id=None):
    rng = np.random.default_rng(0)
    with store.FramesWriter(path, height=h, width=w, fps=25.0,
                            video_id=video_id or path.name.split(".")[0]) as fw:
        for i in range(t):
            fw.append(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), i / 25.0)
    return path


def _probs(t, c, h=None, w=None, seed=0):
    rng = np.random.default_rng(seed)
    size = (t, h, w) if h else (t,)
    p = rng.dirichlet(np.ones(c), size=size).astype(np.float32)
    return np.moveaxis(p, -1, 1)  # T x C (x H x W)


@pytest.fixture
def fitted(cli, tmp_path):
    lab = np.zeros((6, 4, 5), np.uint8)
    lab[2:5, 1:3, 1:4] = 1
    lab[5, :, :2] = 2
    _labels(tmp_path / "a.labels.h5", lab)
    res = cli("hmm-fit", tmp_path / "a.labels.h5", "-o", tmp_path / "hmm.h5", "--smoothing", "0.5")
    assert res.exit_code == 0, res.stderr
    return tmp_path / "hmm.h5"


# -- hmm-fit ---------------------------------------------------------------------------
def test_fit_counts_labels_files(cli, tmp_path):
    a = np.array([[0], [0], [1], [1]], np.uint8)[:, :, None]  # T x 1 x 1
    b = np.array([[1], [2], [2]], np.uint8)[:, :, None]
    _labels(tmp_path / "a.labels.h5", a)
    _labels(tmp_path / "b.labels.h5", b)
    res = cli("hmm-fit", tmp_path / "a.labels.h5", tmp_path / "b.labels.h5", "-o",
              tmp_path / "out" / "hmm.h5", "--smoothing", "0", "--json", "-")
    assert res.exit_code == 0, res.stderr
    rec = store.read_hmm(tmp_path / "out" / "hmm.h5")
    assert rec.class_names == NAMES
    np.testing.assert_allclose(rec["prior"], [0.5, 0.5, 0])
    # a: 0->0, 0->1, 1->1; b: 1->2, 2->2
    np.testing.assert_allclose(rec["transition"], [[0.5, 0.5, 0], [0, 0.5, 0.5], [0, 0, 1]])
    summary = json.loads(res.stdout)
    assert summary["results"][0]["videos"] == 2 and summary["results"][0]["transitions"] == 5
    assert len(rec.attrs["inputs"]) == 2 and rec.attrs["smoothing"] == 0.0


def test_fit_from_a_folder_skips_then_overwrites(cli, tmp_path):
    (tmp_path / "gt").mkdir()
    _labels(tmp_path / "gt" / "a.labels.h5", np.zeros((3, 2, 2)))
    out = tmp_path / "hmm.h5"
    assert cli("hmm-fit", tmp_path / "gt", "-o", out).exit_code == 0
    uid = store.read_hmm(out).uid
    res = cli("hmm-fit", tmp_path / "gt", "-o", out)
    assert res.exit_code == 0 and "exists, skipped" in res.stderr
    assert store.read_hmm(out).uid == uid
    assert cli("hmm-fit", tmp_path / "gt", "-o", out, "--overwrite").exit_code == 0
    assert store.read_hmm(out).uid != uid


def test_fit_refuses_mixed_class_lists(cli, tmp_path):
    _labels(tmp_path / "a.labels.h5", np.zeros((3, 2, 2)))
    _labels(tmp_path / "b.labels.h5", np.zeros((3, 2, 2)), names=["background", "jump"])
    res = cli("hmm-fit", tmp_path / "a.labels.h5", tmp_path / "b.labels.h5", "-o", tmp_path / "h.h5")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines()[-1].startswith(f"vidseg hmm-fit: error: {tmp_path / 'b.labels.h5'}: class list differs")
    assert not (tmp_path / "h.h5").exists()


def test_fit_refuses_scores_as_ground_truth(cli, tmp_path):
    _scores(tmp_path / "v.scores.h5", _probs(2, 3, 2, 2))
    res = cli("hmm-fit", tmp_path / "v.scores.h5", "-o", tmp_path / "h.h5")
    assert res.exit_code == 2 and "expected a labels file (ground truth), found a scores file" in res.stderr


def test_fit_from_jhmdb_puppet_masks(cli, refdata, tmp_path):
    from vidseg_cli.datasets.masks import JHMDB_CLASS_NAMES

    folder = refdata / "jhmdb" / "puppet_mask" / "catch"
    res = cli("hmm-fit", folder, "-o", tmp_path / "h.h5", "--smoothing", "0", "-q")
    assert res.exit_code == 0, res.stderr
    rec = store.read_hmm(tmp_path / "h.h5")
    assert rec.class_names == list(JHMDB_CLASS_NAMES)
    # Count directly from the .mat files.
    import scipy.io

    counts = TransitionCounts(len(JHMDB_CLASS_NAMES))
    for mat in sorted(folder.glob("*.mat")):
        pm = scipy.io.loadmat(str(mat))["part_mask"]
        counts.add(np.moveaxis(pm, 2, 0).astype(np.uint8) * JHMDB_CLASS_NAMES.index("catch"))
    prior, trans = counts.estimate(0)
    np.testing.assert_allclose(rec["prior"], prior)
    np.testing.assert_allclose(rec["transition"], trans)


def test_fit_from_temporal_ground_truth(cli, tmp_path):
    """ActivityNet-style JSON rasterized at the video's fps: frame t at t / fps."""
    db = {
        "v1": {"subset": "validation", "fps": 2.0, "num_frames": 6,
               "annotations": [{"segment": [1.0, 2.0], "label": "walk"}]},  # frames 2, 3
        "v2": {"subset": "validation", "duration": 2.0, "fps": 2.0,  # 4 frames
               "annotations": [{"segment": [0.0, 1.0], "label": "run"}]},  # frames 0, 1
    }
    (tmp_path / "gt.json").write_text(json.dumps({"database": db, "taxonomy": ["walk", "run"]}))
    res = cli("hmm-fit", tmp_path / "gt.json", "-o", tmp_path / "h.h5", "--smoothing", "0")
    assert res.exit_code == 0, res.stderr
    rec = store.read_hmm(tmp_path / "h.h5")
    assert rec.class_names == NAMES
    # v1: 0 0 1 1 0 0 -> 0->0 x2, 0->1, 1->1, 1->0; v2: 2 2 0 0 -> 2->2, 2->0, 0->0
    np.testing.assert_allclose(rec["prior"], [0.5, 0, 0.5])
    np.testing.assert_allclose(rec["transition"], [[3 / 4, 1 / 4, 0], [1 / 2, 1 / 2, 0], [1 / 2, 0, 1 / 2]])


def test_fit_thumos14_needs_a_frame_rate(cli, refdata, tmp_path):
    folder = refdata / "thumos14" / "annotation_test"
    res = cli("hmm-fit", folder, "-o", tmp_path / "h.h5")
    assert res.exit_code == 2 and "no frame rate in the ground truth; give --fps" in res.stderr
    res = cli("hmm-fit", folder, "-o", tmp_path / "h.h5", "--fps", "30")
    assert res.exit_code == 0, res.stderr
    assert "counted up to their last segment" in res.stderr
    rec = store.read_hmm(tmp_path / "h.h5")
    assert len(rec.class_names) == 21 and rec.class_names[0] == "background"
    assert rec["transition"][0, 0] > 0.99  # long stretches of background


# -- hmm-smooth ----------------------------------------------------------------------------
def test_smooth_pixel_and_frame_scores(cli, tmp_path, fitted):
    rec = store.read_hmm(fitted)
    p = _probs(6, 3, 4, 5, seed=1)
    _scores(tmp_path / "v.scores.h5", p, spatial_stride=4)
    res = cli("hmm-smooth", tmp_path / "v.scores.h5", "--hmm", fitted, "-o", tmp_path / "s.h5",
              "--device", "cpu", "--json", "-")
    assert res.exit_code == 0, res.stderr
    out = store.read_scores(tmp_path / "s.h5")
    np.testing.assert_allclose(out["probs"], smooth(p, rec["prior"], rec["transition"]), atol=1e-6)
    assert out.attrs["spatial_stride"] == 4 and out.class_names == NAMES
    assert [i["path"].rsplit("/", 1)[-1] for i in out.attrs["inputs"]] == ["v.scores.h5", "hmm.h5"]
    assert out.attrs["inputs"][1]["uid"] == rec.uid
    # Frame scores: same file kind out.
    f = _probs(6, 3, seed=2)
    _scores(tmp_path / "f.frame_scores.h5", f)
    res = cli("hmm-smooth", tmp_path / "f.frame_scores.h5", "--hmm", fitted, "-o", tmp_path / "o")
    assert res.exit_code == 0, res.stderr
    got = store.read_frame_scores(tmp_path / "o" / "f.frame_scores.h5")["probs"]
    np.testing.assert_allclose(got, smooth(f, rec["prior"], rec["transition"]), atol=1e-6)


def test_smooth_a_folder_with_tiles_and_jobs(cli, tmp_path, fitted):
    (tmp_path / "in").mkdir()
    ps = {v: _probs(6, 3, 7, 9, seed=i) for i, v in enumerate(["x", "y"])}
    for v, p in ps.items():
        _scores(tmp_path / "in" / f"{v}.scores.h5", p)
    _labels(tmp_path / "in" / "z.labels.h5", np.zeros((2, 2, 2)))  # ignored, with a notice
    res = cli("hmm-smooth", tmp_path / "in", "--hmm", fitted, "-o", tmp_path / "out",
              "--max-memory", "3K", "--jobs", "2")
    assert res.exit_code == 0, res.stderr
    assert "1 file(s) of other kinds ignored" in res.stderr
    rec = store.read_hmm(fitted)
    for v, p in ps.items():
        got = store.read_scores(tmp_path / "out" / f"{v}.scores.h5")["probs"]
        np.testing.assert_allclose(got, smooth(p, rec["prior"], rec["transition"]), atol=1e-6)


def test_a_broken_file_named_as_an_input_kind_in_a_folder_fails_alone(cli, tmp_path, fitted):
    """A folder's unreadable <id>.scores.h5 is a failed input (one line, exit 1), not a file of
    another kind to skip quietly; the other inputs are still smoothed."""
    (tmp_path / "in").mkdir()
    _scores(tmp_path / "in" / "x.scores.h5", _probs(6, 3, 2, 2))
    (tmp_path / "in" / "y.scores.h5").write_bytes(b"not hdf5")
    (tmp_path / "in" / "other.h5").write_bytes(b"not hdf5 either")  # not named as scores: ignored
    res = cli("hmm-smooth", tmp_path / "in", "--hmm", fitted, "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert "y.scores.h5: not a readable HDF5 file" in res.stderr
    assert "1 file(s) of other kinds ignored" in res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.scores.h5"]


def test_smooth_refuses_to_replace_its_input(cli, tmp_path, fitted):
    _scores(tmp_path / "v.scores.h5", _probs(6, 3, 2, 2))
    res = cli("hmm-smooth", tmp_path / "v.scores.h5", "--hmm", fitted, "-o", tmp_path, "--overwrite")
    assert res.exit_code == 2 and "would replace this input" in res.stderr


def _one_error_line(res, stage, path, text):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"vidseg {stage}: error: {path}: "), lines[0]
    assert text in lines[0], lines[0]


@pytest.mark.parametrize(
    "edit,text",
    [
        (lambda p: p.__setitem__((3, 0, 1, 2), np.nan), "frame 3: NaN or infinite score at pixel (y=1, x=2)"),
        (lambda p: p.__setitem__((2, slice(None), 0, 0), p[2, :, 0, 0] * 1.2), "frame 2: class probabilities sum to 1.2 at pixel (y=0, x=0)"),
    ],
)
def test_smooth_bad_probabilities(cli, tmp_path, fitted, edit, text):
    p = _probs(6, 3, 4, 5)
    edit(p)
    src = _scores(tmp_path / "v.scores.h5", p)
    res = cli("hmm-smooth", src, "--hmm", fitted, "-o", tmp_path / "o.h5")
    _one_error_line(res, "hmm-smooth", src, text)
    assert not (tmp_path / "o.h5").exists()
    assert not list(tmp_path.glob(".vidseg-tmp-*"))


def test_smooth_class_list_mismatch(cli, tmp_path, fitted):
    src = _scores(tmp_path / "v.scores.h5", _probs(6, 3, 2, 2), names=["background", "walk", "jump"])
    res = cli("hmm-smooth", src, "--hmm", fitted, "-o", tmp_path / "o.h5")
    _one_error_line(res, "hmm-smooth", src, "class list differs from the HMM's")
    assert "class 2 is 'jump' vs 'run'" in res.stderr


def test_smooth_bad_hmm_rows(cli, tmp_path):
    store.write_hmm(tmp_path / "bad.h5", [0.5, 0.3, 0.2], [[0.9, 0.1, 0.1], [0, 1, 0], [0, 0, 1]], NAMES)
    src = _scores(tmp_path / "v.scores.h5", _probs(6, 3, 2, 2))
    res = cli("hmm-smooth", src, "--hmm", tmp_path / "bad.h5", "-o", tmp_path / "o.h5")
    _one_error_line(res, "hmm-smooth", tmp_path / "bad.h5", "transition row 0 sums to 1.1, expected 1")


def test_smooth_batch_with_one_bad_input_exits_1(cli, tmp_path, fitted):
    good = _scores(tmp_path / "g.scores.h5", _probs(6, 3, 2, 2))
    p = _probs(6, 3, 2, 2)
    p[0, 0, 0, 0] = np.nan
    bad = _scores(tmp_path / "b.scores.h5", p)
    res = cli("hmm-smooth", good, bad, "--hmm", fitted, "-o", tmp_path / "out")
    assert res.exit_code == 1
    assert (tmp_path / "out" / "g.scores.h5").exists() and not (tmp_path / "out" / "b.scores.h5").exists()
    assert f"vidseg hmm-smooth: error: {bad}: frame 0: NaN" in res.stderr


def test_smooth_bad_options(cli, tmp_path, fitted):
    src = _scores(tmp_path / "v.scores.h5", _probs(2, 3, 2, 2))
    assert cli("hmm-smooth", src, "--hmm", fitted, "-o", tmp_path / "o.h5", "--max-memory", "lots").exit_code == 2
    res = cli("hmm-smooth", src, "--hmm", fitted, "-o", tmp_path / "o.h5", "--max-memory", "10")
    _one_error_line(res, "hmm-smooth", src, "too small")


# -- crf-refine on small synthetic files -------------------------------------------------------
def test_crf_pairs_by_video_id_and_upsamples(cli, tmp_path):
    (tmp_path / "f").mkdir()
    _frames(tmp_path / "f" / "clip_a.frames.h5", 3, 16, 24)
    _frames(tmp_path / "f" / "clip_b.frames.h5", 2, 16, 24)
    pa = _probs(3, 3, 4, 6, seed=3)  # stride 4
    _scores(tmp_path / "sa.scores.h5", pa, video_id="clip_a", spatial_stride=4)
    _scores(tmp_path / "sb.scores.h5", _probs(2, 3, 16, 24, seed=4), video_id="clip_b")
    res = cli("crf-refine", tmp_path / "sa.scores.h5", tmp_path / "sb.scores.h5", "--frames",
              tmp_path / "f", "-o", tmp_path / "out", "--keep-probs", "--json", "-")
    assert res.exit_code == 0, res.stderr
    la = store.read_labels(tmp_path / "out" / "clip_a.labels.h5")
    assert la["labels"].shape == (3, 16, 24) and la.class_names == NAMES
    assert la.attrs["crf_w1"] == 10.0 and la.attrs["crf_theta_alpha"] == 100.0
    marg = store.read_scores(tmp_path / "out" / "clip_a.scores.h5")["probs"]
    assert marg.shape == (3, 3, 16, 24)
    np.testing.assert_allclose(marg.sum(1), 1, atol=1e-4)
    np.testing.assert_array_equal(la["labels"], marg.argmax(1))
    assert store.read_labels(tmp_path / "out" / "clip_b.labels.h5")["labels"].shape == (2, 16, 24)


def test_crf_zero_iterations_is_argmax_of_upsampled_scores(cli, tmp_path):
    from vidseg_cli.stages.crf import upsample_to

    _frames(tmp_path / "v.frames.h5", 2, 12, 12)
    p = _probs(2, 3, 3, 3, seed=5)
    _scores(tmp_path / "v.scores.h5", p, spatial_stride=4)
    res = cli("crf-refine", tmp_path / "v.scores.h5", "--frames", tmp_path / "v.frames.h5",
              "-o", tmp_path / "l.h5", "--iterations", "0")
    assert res.exit_code == 0, res.stderr
    want = np.stack([upsample_to(p[i], 4, (12, 12)).argmax(0) for i in range(2)])
    np.testing.assert_array_equal(store.read_labels(tmp_path / "l.h5")["labels"], want)


def test_crf_frames_and_scores_of_different_length(cli, tmp_path):
    frames = _frames(tmp_path / "v.frames.h5", 3, 8, 8)
    src = _scores(tmp_path / "v.scores.h5", _probs(4, 3, 8, 8))
    res = cli("crf-refine", src, "--frames", frames, "-o", tmp_path / "l.h5")
    _one_error_line(res, "crf-refine", src, f"4 frames of scores, but the frames file {frames} has 3")


@pytest.mark.parametrize("what", ["nan", "sum", "size", "noframes"])
def test_crf_bad_inputs(cli, tmp_path, what):
    _frames(tmp_path / "v.frames.h5", 2, 8, 8)
    p = _probs(2, 3, 8, 8)
    vid = "v"
    if what == "nan":
        p[1, 2, 3, 4] = np.nan
        text = "frame 1: NaN or infinite score at pixel (y=3, x=4)"
    elif what == "sum":
        p[0, :, 5, 6] = 0.2
        text = "frame 0: class probabilities sum to 0.6 at pixel (y=5, x=6)"
    elif what == "size":
        p = _probs(2, 3, 8, 6)
        text = "scores are 6x8 (WxH), the frames 8x8"
    else:
        vid = "other"
        text = "no frames file for video 'other' among --frames"
    src = _scores(tmp_path / "s.scores.h5", p, video_id=vid)
    res = cli("crf-refine", src, "--frames", tmp_path / "v.frames.h5", "-o", tmp_path / "l.h5")
    _one_error_line(res, "crf-refine", src, text)
    assert not (tmp_path / "l.h5").exists()


def test_fit_foreground_refuses_labels_outside_the_class_list(cli, tmp_path):
    """--foreground merges the actions, but a label beyond the class list is a broken file,
    as without the flag, not foreground."""
    bad = _labels(tmp_path / "bad.labels.h5", np.full((3, 2, 2), 7))
    for extra in ([], ["--foreground"]):
        res = cli("hmm-fit", bad, "-o", tmp_path / "h.h5", *extra)
        assert res.exit_code == 2
        assert "bad.labels.h5: video 'bad': label value 7 is outside the 3 classes" in res.stderr
        assert not (tmp_path / "h.h5").exists()


def test_smooth_keeps_the_action_scores_of_a_sep3d_head(cli, tmp_path, fitted):
    """Per-frame action scores (segment-3d with a sep3d+head checkpoint) are copied through
    unchanged, so evaluate still reports frame-mAP on the smoothed scores."""
    p = _probs(6, 3, 4, 5, seed=3)
    acts = np.random.default_rng(0).random((6, 2)).astype(np.float32)
    acts[2] = np.nan  # a frame without a predicted actor
    store.write(tmp_path / "v.scores.h5", "scores", {"probs": p, "action_scores": acts},
                video_id="v", num_frames=6, fps=25.0, class_names=NAMES,
                attrs={"action_names": ["walk", "run"]})
    res = cli("hmm-smooth", tmp_path / "v.scores.h5", "--hmm", fitted, "-o", tmp_path / "o.h5")
    assert res.exit_code == 0, res.stderr
    with store.open_record(tmp_path / "o.h5", "scores") as rec:
        np.testing.assert_array_equal(rec["action_scores"][()], acts)
        assert list(rec.attrs["action_names"]) == ["walk", "run"]
        assert rec.attrs["postprocess"] == "hmm-smooth"


# -- the runners from Python -------------------------------------------------------------------
def test_hmm_fit_runner_from_python(tmp_path):
    from vidseg_cli.api import hmm_fit

    _labels(tmp_path / "a.labels.h5", np.array([[0], [0], [1], [1]], np.uint8)[:, :, None])
    _labels(tmp_path / "b.labels.h5", np.array([[1], [2], [2]], np.uint8)[:, :, None])
    s = hmm_fit.load(hmm_fit.Options(smoothing=0)).run(
        {"ground-truth": [tmp_path / "a.labels.h5", tmp_path / "b.labels.h5"]},
        {"hmm": tmp_path / "hmm.h5"})
    assert isinstance(s, hmm_fit.HmmFitSummary)
    assert (s.videos, s.transitions, s.classes, s.notes) == (2, 5, 3, [])
    assert s.to_json()["self_transition"] == {"background": 0.5, "walk": 0.5, "run": 1.0}
    np.testing.assert_allclose(store.read_hmm(tmp_path / "hmm.h5")["prior"], [0.5, 0.5, 0])


def test_hmm_smooth_runner_from_python(tmp_path, fitted):
    from vidseg_cli.api import hmm_smooth

    rec = store.read_hmm(fitted)
    smoother = hmm_smooth.load(hmm_smooth.Options(hmm=fitted, device="cpu"))
    f = _probs(6, 3, seed=2)
    _scores(tmp_path / "f.frame_scores.h5", f)
    s = smoother.run({"frame_scores": tmp_path / "f.frame_scores.h5"},
                     {"frame_scores": tmp_path / "o.frame_scores.h5"})
    assert isinstance(s, hmm_smooth.SmoothSummary)
    assert (s.kind, s.shape, s.tiles) == ("frame_scores", [6, 3], 1)
    got = store.read_frame_scores(tmp_path / "o.frame_scores.h5")["probs"]
    np.testing.assert_allclose(got, smooth(f, rec["prior"], rec["transition"]), atol=1e-6)
    # the HMM's record serves as well as its path
    p = _probs(6, 3, 4, 5, seed=1)
    _scores(tmp_path / "v.scores.h5", p)
    s = hmm_smooth.load(hmm_smooth.Options(hmm=rec, device="cpu")).run(
        {"scores": tmp_path / "v.scores.h5"}, {"scores": tmp_path / "s.h5"})
    assert s.to_json() == {"input": str(tmp_path / "v.scores.h5"), "output": str(tmp_path / "s.h5"),
                           "kind": "scores", "shape": [6, 3, 4, 5], "tiles": 1}
    np.testing.assert_allclose(store.read_scores(tmp_path / "s.h5")["probs"],
                               smooth(p, rec["prior"], rec["transition"]), atol=1e-6)


def test_hmm_smooth_load_refuses_a_bad_hmm(tmp_path):
    from vidseg_cli.api import hmm_smooth
    from vidseg_cli.errors import InputError

    store.write_hmm(tmp_path / "bad.h5", [0.5, 0.3, 0.2], [[0.9, 0.1, 0.1], [0, 1, 0], [0, 0, 1]], NAMES)
    with pytest.raises(InputError, match="bad.h5: transition row 0 sums to 1.1"):
        hmm_smooth.load(hmm_smooth.Options(hmm=tmp_path / "bad.h5"))


def test_crf_refine_runner_from_python(tmp_path):
    from vidseg_cli.api import crf_refine
    from vidseg_cli.stages.crf import CRFParams

    _frames(tmp_path / "v.frames.h5", 2, 8, 8)
    _scores(tmp_path / "v.scores.h5", _probs(2, 3, 8, 8, seed=6))
    (tmp_path / "out").mkdir()
    refiner = crf_refine.load(crf_refine.Options(params=CRFParams(iterations=2)))
    s = refiner.run({"scores": tmp_path / "v.scores.h5", "frames": tmp_path / "v.frames.h5"},
                    {"labels": tmp_path / "out" / "v.labels.h5", "scores": tmp_path / "out" / "m.h5"})
    assert isinstance(s, crf_refine.RefineSummary)
    assert (s.num_frames, s.upsampled, s.probs) == (2, False, str(tmp_path / "out" / "m.h5"))
    labels = store.read_labels(tmp_path / "out" / "v.labels.h5")
    assert labels["labels"].shape == (2, 8, 8) and labels.attrs["crf_iterations"] == 2
    marg = store.read_scores(tmp_path / "out" / "m.h5")["probs"]
    np.testing.assert_array_equal(labels["labels"], marg.argmax(1))
    # without a "scores" output, only the labels
    s = refiner.run({"scores": tmp_path / "v.scores.h5", "frames": tmp_path / "v.frames.h5"},
                    {"labels": tmp_path / "l.h5"})
    assert s.to_json()["probs"] is None and (tmp_path / "l.h5").exists()


def test_crf_keep_probs_rerun_redoes_a_job_missing_its_scores(cli, tmp_path):
    """With --keep-probs the refined scores are an output of the job: labels present but
    scores deleted is redone; both present is skipped."""
    _frames(tmp_path / "v.frames.h5", 2, 8, 8)
    _scores(tmp_path / "v.scores.h5", _probs(2, 3, 8, 8, seed=7))
    args = ("crf-refine", tmp_path / "v.scores.h5", "--frames", tmp_path / "v.frames.h5",
            "-o", tmp_path / "out", "--keep-probs", "--iterations", "1")
    assert cli(*args).exit_code == 0
    labels, scores = tmp_path / "out" / "v.labels.h5", tmp_path / "out" / "v.scores.h5"
    uid = store.read_labels(labels).uid
    scores.unlink()
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    assert f"{labels}: exists but {scores} does not: redone" in res.stderr
    assert scores.exists() and store.read_labels(labels).uid != uid
    uid = store.read_labels(labels).uid
    res = cli(*args, "--json", "-")
    assert res.exit_code == 0 and "exists, skipped" in res.stderr
    assert json.loads(res.stdout)["skipped"] == [str(labels)]
    assert store.read_labels(labels).uid == uid
