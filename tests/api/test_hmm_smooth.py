"""hmm-smooth on small files, through the CLI and from Python: the belief, tiles and
jobs, kinds in and out, and every bad input as one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.post_files import NAMES, _labels, _one_error_line, _probs, _scores
from vidseg_cli import store
from vidseg_cli.stages.hmm.smooth import smooth


@pytest.fixture
def fitted(cli, tmp_path):
    lab = np.zeros((6, 4, 5), np.uint8)
    lab[2:5, 1:3, 1:4] = 1
    lab[5, :, :2] = 2
    _labels(tmp_path / "a.labels.h5", lab)
    res = cli("hmm-fit", tmp_path / "a.labels.h5", "-o", tmp_path / "hmm.h5", "--smoothing", "0.5")
    assert res.exit_code == 0, res.stderr
    return tmp_path / "hmm.h5"


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
