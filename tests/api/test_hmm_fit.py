"""hmm-fit on small files, through the CLI and from Python: counts, sources,
skip/overwrite, and every bad input as one line naming the file, exit 2."""

from __future__ import annotations

import json

import numpy as np

from tests.api.post_files import NAMES, _labels, _probs, _scores
from vidseg_cli import store
from vidseg_cli.stages.hmm.fit import TransitionCounts


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


def test_fit_foreground_refuses_labels_outside_the_class_list(cli, tmp_path):
    """--foreground merges the actions, but a label beyond the class list is a broken file,
    as without the flag, not foreground."""
    bad = _labels(tmp_path / "bad.labels.h5", np.full((3, 2, 2), 7))
    for extra in ([], ["--foreground"]):
        res = cli("hmm-fit", bad, "-o", tmp_path / "h.h5", *extra)
        assert res.exit_code == 2
        assert "bad.labels.h5: video 'bad': label value 7 is outside the 3 classes" in res.stderr
        assert not (tmp_path / "h.h5").exists()


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


def test_fit_counts_a_file_given_twice_once(cli, tmp_path):
    a = np.array([[0], [0], [1], [1]], np.uint8)[:, :, None]
    (tmp_path / "gt").mkdir()
    _labels(tmp_path / "gt" / "a.labels.h5", a)
    res = cli("hmm-fit", tmp_path / "gt" / "a.labels.h5", tmp_path / "gt", "-o", tmp_path / "hmm.h5",
              "--json", "-")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["results"][0]["videos"] == 1
    assert res.stderr.splitlines()[0] == (f"vidseg hmm-fit: warning: {tmp_path / 'gt' / 'a.labels.h5'}: "
                                          "given more than once; counted once")
    assert len(store.read_hmm(tmp_path / "hmm.h5").attrs["inputs"]) == 1
