"""crf-refine on small synthetic files, through the CLI and from Python: pairing by
video_id, upsampling, --keep-probs reruns, and every bad input as one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.api.post_files import NAMES, _frames, _one_error_line, _probs, _scores
from vidseg_cli import store


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


@pytest.mark.parametrize("what", ["missing", "not scores"])
def test_crf_an_unreadable_scores_file_is_named_before_its_frames(cli, tmp_path, what):
    frames = _frames(tmp_path / "v.frames.h5", 2, 8, 8)
    src = tmp_path / "nope.scores.h5"
    if what == "not scores":
        _frames(src, 2, 8, 8, video_id="nope")
    res = cli("crf-refine", src, "--frames", frames, "-o", tmp_path / "l.h5")
    _one_error_line(res, "crf-refine", src, "no such file" if what == "missing"
                    else "expected a scores file, found a frames file")
    assert "no frames file" not in res.stderr
