"""`vidseg evaluate` and `vidseg export` end to end: every prediction format, the JSON
summary, warnings with counts, --strict, one-line errors, the pixel-level dispatch."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import GOLDEN
from vidseg_cli import store

CLASSES = ["background", "jump", "run"]


@pytest.fixture
def gt_json(tmp_path) -> Path:
    """Two videos at 10 fps: v1 has jump [1, 3) s and run [5, 6) s; v2 has jump [0, 2) s."""
    db = {
        "v1": {"subset": "test", "duration": 10.0, "fps": 10.0, "num_frames": 100,
               "annotations": [{"segment": [1.0, 3.0], "label": "jump"},
                               {"segment": [5.0, 6.0], "label": "run"}]},
        "v2": {"subset": "test", "duration": 5.0, "fps": 10.0, "num_frames": 50,
               "annotations": [{"segment": [0.0, 2.0], "label": "jump"}]},
    }
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"database": db, "taxonomy": ["jump", "run"]}))
    return p


def _dets(folder: Path, segs: dict, fps=10.0):
    folder.mkdir(exist_ok=True)
    for vid, rows in segs.items():
        a = np.array(rows, float).reshape(-1, 4)
        store.write_detections(folder / f"{vid}.detections.h5", a[:, :2], a[:, 2].astype(int), a[:, 3],
                               class_names=CLASSES, video_id=vid, num_frames=100, fps=fps)
    return folder


def test_thumos14_text_end_to_end_matches_golden(cli, refdata, tmp_path):
    out = tmp_path / "r.json"
    r = cli("evaluate", GOLDEN / "th14_dets_ties.txt", "--gt", refdata / "thumos14" / "annotation_test",
            "--json", out)
    assert r.exit_code == 0, r.stderr
    assert "thumos14 protocol" in r.stdout and "VolleyballSpiking" in r.stdout
    assert "8 predictions for videos absent from the ground truth" in r.stderr
    res = json.loads(out.read_text())
    gold = json.loads((GOLDEN / "thumos14_scorer.json").read_text())["sets"]["ties"]
    assert res["protocol"] == "thumos14" and res["tiou"][0] == 0.1
    assert res["mAP"]["0.5"] == pytest.approx(gold["mAP"][4], abs=1e-4)
    assert res["AP"]["Diving"]["0.3"] == pytest.approx(gold["AP"]["Diving"][2], abs=1e-4)
    assert res["warnings"] == {"unknown_video": 8}
    assert sum(res["num_gt"].values()) == 3358
    # the same under the other protocol, JSON on stdout
    r = cli("evaluate", GOLDEN / "th14_dets_unique.txt", "--gt", refdata / "thumos14" / "annotation_test",
            "--protocol", "activitynet", "--json", "-")
    res = json.loads(r.stdout)
    gold = json.loads((GOLDEN / "activitynet_scorer.json").read_text())["sets"]["unique"]["anet"]
    assert list(res["mAP"]) == ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95"]
    assert res["mAP"]["0.5"] == pytest.approx(gold["mAP"][0], abs=1e-4)
    assert "2 detections of classes the ground truth does not know" in r.stderr


def test_h5_detections_export_and_round_trip(cli, gt_json, tmp_path):
    # frames at 10 fps: [10, 30) = [1, 3) s exactly jump in v1; a run miss; v2 jump hit
    d = _dets(tmp_path / "dets", {
        "v1": [(10, 30, 1, 0.9), (80, 90, 2, 0.8), (50, 60, 2, 0.4)],
        "v2": [(0, 20, 1, 0.7)],
    })
    out = tmp_path / "a.json"
    r = cli("evaluate", d, "--gt", gt_json, "--tiou", "0.5,0.7", "--json", out)
    assert r.exit_code == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["protocol"] == "activitynet" and list(res["mAP"]) == ["0.5", "0.7"]
    assert res["AP"]["jump"]["0.5"] == pytest.approx(1.0)
    # run: FP .8 then TP .4 -> interpolated .5
    assert res["AP"]["run"]["0.5"] == pytest.approx(0.5)
    assert res["mAP"]["0.5"] == pytest.approx(0.75)

    exp = tmp_path / "results.json"
    r = cli("export", d, "-o", exp)
    assert r.exit_code == 0, r.stderr
    results = json.loads(exp.read_text())["results"]
    assert results["v1"][0] == {"segment": [1.0, 3.0], "label": "jump", "score": 0.9}
    r = cli("evaluate", exp, "--gt", gt_json, "--tiou", "0.5,0.7", "--json", tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["AP"] == res["AP"]
    # THUMOS14 text; class indices are the class_names' ones (jump 1, run 2)
    txt = tmp_path / "results.txt"
    assert cli("export", d, "-o", txt).exit_code == 0
    assert txt.read_text().splitlines()[0] == "v1 1 3 1 0.9"
    r = cli("evaluate", txt, "--gt", gt_json, "--protocol", "thumos14", "--json", "-")
    res = json.loads(r.stdout)
    # thumos14: run's GT takes the detection it overlaps, ranked second -> 1/2
    assert res["AP"]["run"]["0.5"] == pytest.approx(0.5) and res["AP"]["jump"]["0.7"] == 1.0
    # an existing output is skipped
    r = cli("export", d, "-o", txt)
    assert r.exit_code == 0 and "exists, skipped" in r.stderr


def test_proposals_and_frame_scores(cli, gt_json, tmp_path):
    pd = tmp_path / "props"
    pd.mkdir()
    store.write_proposals(pd / "v1.proposals.h5", [[10, 30], [50, 60], [0, 5]], [0.9, 0.5, 0.1],
                          video_id="v1", num_frames=100, fps=10.0)
    store.write_proposals(pd / "v2.proposals.h5", [[0, 20]], [0.3], video_id="v2", num_frames=50, fps=10.0)
    r = cli("evaluate", pd, "--gt", gt_json, "--json", "-", "--max-proposals", "5")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["kind"] == "proposals" and res["num_gt"] == 3
    assert res["AR@AN"]["5"] == pytest.approx(1.0)  # all three GT found exactly

    fd = tmp_path / "frames"
    fd.mkdir()
    p1 = np.zeros((100, 3), np.float32)
    p1[10:30, 1] = 0.9  # jump frames of v1
    p1[50:60, 2] = 0.8  # run frames
    p2 = np.zeros((50, 3), np.float32)
    p2[0:20, 1] = 0.9
    store.write_frame_scores(fd / "v1.frame_scores.h5", p1, class_names=CLASSES, video_id="v1",
                             num_frames=100, fps=10.0)
    store.write_frame_scores(fd / "v2.frame_scores.h5", p2, class_names=CLASSES, video_id="v2",
                             num_frames=50, fps=10.0)
    r = cli("evaluate", fd, "--gt", gt_json, "--json", "-")
    res = json.loads(r.stdout)
    assert res["kind"] == "frame_scores" and res["num_frames"] == 150
    assert res["AP"] == {"jump": 1.0, "run": 1.0} and res["num_positive_frames"] == {"jump": 40, "run": 10}


def test_questionable_records_warn_with_counts_and_fail_under_strict(cli, gt_json, tmp_path):
    res = {"results": {
        "v1": [{"segment": [1, 3], "label": "jump", "score": 0.9},
               {"segment": [4, 4], "label": "jump", "score": 0.5},
               {"segment": [5, 6], "label": "run", "score": float("nan")},
               {"segment": [5, 6], "label": "swim", "score": 0.5}],
        "v9": [{"segment": [1, 3], "label": "jump", "score": 0.2},
               {"segment": [1, 3], "label": "jump", "score": 0.1}],
    }}
    p = tmp_path / "res.json"
    p.write_text(json.dumps(res))  # NaN is written as the token NaN, which json reads
    r = cli("evaluate", p, "--gt", gt_json, "--json", "-")
    assert r.exit_code == 0
    err = r.stderr
    assert "2 predictions for videos absent from the ground truth (e.g. v9)" in err
    assert "1 detections of classes the ground truth does not know (e.g. 'swim')" in err
    assert "1 predictions with a NaN or infinite score" in err and "NaN first" in err
    assert "1 segments with end <= start" in err
    assert json.loads(r.stdout)["warnings"] == {
        "nonfinite_score": 1, "bad_segment": 1, "unknown_class": 1, "unknown_video": 2}
    r = cli("evaluate", p, "--gt", gt_json, "--strict")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vidseg evaluate: error: {p}: ") and "(--strict)" in lines[0]

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = cli("evaluate", empty, "--gt", gt_json)
    assert r.exit_code == 0 and "1 prediction files with no predictions" in r.stderr
    assert cli("evaluate", empty, "--gt", gt_json, "--strict").exit_code == 2


def test_bad_inputs_are_one_line_errors(cli, gt_json, tmp_path):
    def one_line(r, *words):
        assert r.exit_code == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vidseg evaluate: error: "), r.stderr
        for w in words:
            assert w in lines[0]

    garbage = tmp_path / "x.detections.h5"
    garbage.write_bytes(b"not hdf5")
    one_line(cli("evaluate", garbage, "--gt", gt_json), str(garbage), "not a readable HDF5 file")
    feats = tmp_path / "f.h5"
    store.write_features(feats, np.zeros((2, 3)), [0, 1], video_id="v1", num_frames=2, fps=10.0)
    one_line(cli("evaluate", feats, "--gt", gt_json), "found a features file")
    bad = tmp_path / "bad.txt"
    bad.write_text("v1 1.0 2.0 1 0.5\nv1 oops\n")
    one_line(cli("evaluate", bad, "--gt", gt_json), "line 2")
    one_line(cli("evaluate", bad, "--gt", tmp_path / "nope.json"), "nope.json", "no such file")
    one_line(cli("evaluate", tmp_path / "missing.json", "--gt", gt_json), "no such file")
    notres = tmp_path / "n.json"
    notres.write_text('{"database": {}}')
    one_line(cli("evaluate", notres, "--gt", gt_json), "'results'")
    d = _dets(tmp_path / "d", {"v1": [(10, 30, 1, 0.9)]})
    one_line(cli("evaluate", d / "v1.detections.h5", bad, "--gt", gt_json), "different kinds")
    r = cli("evaluate", bad, "--gt", gt_json, "--tiou", "0.5,abc")
    assert r.exit_code == 2 and "thresholds" in r.stderr


def test_pixel_inputs_are_dispatched(cli, gt_json, tmp_path, monkeypatch):
    lab = tmp_path / "v1.labels.h5"
    store.write_labels(lab, np.zeros((2, 4, 4), np.uint8), class_names=CLASSES, video_id="v1",
                       num_frames=2, fps=10.0)
    seen = {}

    def evaluate_pixel(pred_paths, gt_path, *, davis_task="unsupervised", strict=False, pixel_frames="all"):
        seen.update(paths=pred_paths, gt=gt_path, task=davis_task, strict=strict)
        return {"kind": "pixel", "J": {"mean": 0.5}}

    def pixel_table(result):
        from rich.table import Table

        t = Table(title="pixel stand-in")
        t.add_column("J")
        t.add_row(str(result["J"]["mean"]))
        return t

    fake = types.ModuleType("vidseg_cli.metrics.pixel_report")
    fake.evaluate_pixel, fake.pixel_table = evaluate_pixel, pixel_table
    monkeypatch.setitem(sys.modules, "vidseg_cli.metrics.pixel_report", fake)
    r = cli("evaluate", lab, "--gt", gt_json, "--davis-task", "semi-supervised", "--strict", "--json", "-")
    assert r.exit_code == 0, r.stderr
    assert seen == {"paths": [str(lab)], "gt": str(gt_json), "task": "semi-supervised", "strict": True}
    assert json.loads(r.stdout) == {"kind": "pixel", "J": {"mean": 0.5}}


def test_a_prediction_sharing_no_class_with_the_ground_truth_is_an_error(cli, gt_json, tmp_path):
    d = tmp_path / "dets"
    d.mkdir()
    store.write_detections(d / "v1.detections.h5", np.array([[10.0, 30.0]]), np.array([1]),
                           np.array([0.9]), class_names=["background", "Dive", "Swim"], video_id="v1",
                           num_frames=100, fps=10.0)
    r = cli("evaluate", d, "--gt", gt_json)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "none of its classes (Dive) is a class of the ground truth (jump, run)" in r.stderr


def test_thumos14_export_refuses_a_video_id_with_whitespace(cli, tmp_path):
    d = _dets(tmp_path / "dets", {"my video": [(10, 30, 1, 0.9)]})
    r = cli("export", d, "-o", tmp_path / "r.txt")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "video id 'my video' holds whitespace" in r.stderr and not (tmp_path / "r.txt").exists()
    r = cli("export", d, "-o", tmp_path / "r.json")  # result JSON keeps any id, and reads back
    assert r.exit_code == 0 and "my video" in json.loads((tmp_path / "r.json").read_text())["results"]
