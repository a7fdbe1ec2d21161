"""Other tools' results scored by `vidseg evaluate`: OpenTAD's result_detection.json,
ActionFormer's eval_results.pkl, mmaction2's JSON and pickle dumps, each written by hand in
the tool's layout, scored under both protocols against a hand-worked ground truth; a
pickle naming anything but plain data is refused before it runs."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from vidseg_cli.datasets.safe_pickle import load_plain
from vidseg_cli.datasets.tool_results import read_class_names, read_pickle_results
from vidseg_cli.errors import InputError

# (video, start, end, class, score): v1 jump exact; v2 jump at tIoU 0.75; v1 run exact;
# v1 jump far from any ground truth (a false positive at every threshold)
DETS = [("v1", 1.0, 3.0, "jump", 0.9), ("v2", 0.5, 2.0, "jump", 0.8),
        ("v1", 5.0, 6.0, "run", 0.7), ("v1", 6.0, 8.0, "jump", 0.6)]
# ActionFormer numbers classes by its annotation JSON's label_id
LABEL_ID = {"jump": 3, "run": 7}


def _gt(tmp_path: Path, label_id: bool) -> Path:
    def ann(s, e, lab):
        a = {"segment": [s, e], "label": lab}
        if label_id:
            a["label_id"] = LABEL_ID[lab]
        return a

    db = {"v1": {"subset": "test", "duration": 10.0, "annotations": [ann(1, 3, "jump"), ann(5, 6, "run")]},
          "v2": {"subset": "test", "duration": 5.0, "annotations": [ann(0, 2, "jump")]}}
    p = tmp_path / ("gt_ids.json" if label_id else "gt.json")
    p.write_text(json.dumps({"database": db}))
    return p


def _opentad(tmp_path: Path) -> Path:
    res: dict = {}
    for v, s, e, c, sc in DETS:
        res.setdefault(v, []).append({"segment": [s, e], "label": c, "score": sc})
    p = tmp_path / "result_detection.json"
    p.write_text(json.dumps({"results": res}))
    return p


def _actionformer(tmp_path: Path, protocol: int = 4) -> Path:
    results = {"video-id": [d[0] for d in DETS],
               "t-start": np.array([d[1] for d in DETS], np.float32),
               "t-end": np.array([d[2] for d in DETS], np.float32),
               "label": np.array([LABEL_ID[d[3]] for d in DETS], np.int64),
               "score": np.array([d[4] for d in DETS], np.float32)}
    p = tmp_path / f"eval_results_p{protocol}.pkl"
    p.write_bytes(pickle.dumps(results, protocol=protocol))
    return p


def _score(cli, tmp_path, preds, gt, *extra, table="mAP") -> dict:
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    r = cli("evaluate", preds, "--gt", gt, "--json", out, *extra)
    assert r.exit_code == 0, r.stderr
    assert table in r.stdout  # the usual table
    return json.loads(out.read_text())


@pytest.mark.parametrize("protocol", ["activitynet", "thumos14"])
def test_opentad_and_actionformer_results_score_as_worked_by_hand(cli, tmp_path, protocol):
    gt, gt_ids = _gt(tmp_path, False), _gt(tmp_path, True)
    tiou = "0.5,0.7,0.75,0.8"
    ref = _score(cli, tmp_path, _opentad(tmp_path), gt, "--protocol", protocol, "--tiou", tiou)
    # jump: TP 0.9, TP 0.8 (tIoU 0.75), FP 0.6 -> AP 1 up to 0.75; at 0.8 the v2 one misses:
    # TP, FP, FP -> recall 1/2 at precision 1 -> AP 0.5; run exact: AP 1
    want = {"0.5": 1.0, "0.7": 1.0, "0.8": 0.75}
    if protocol == "activitynet":
        want["0.75"] = 1.0  # tIoU >= t
    else:
        want["0.75"] = 0.75  # THUMOS14 needs overlap > t
    assert ref["mAP"] == pytest.approx(want, abs=1e-6)
    assert ref["protocol"] == protocol
    for p in (2, 4, 5):
        af = _score(cli, tmp_path, _actionformer(tmp_path, p), gt_ids, "--protocol", protocol,
                    "--tiou", tiou)
        assert af["mAP"] == pytest.approx(ref["mAP"])
        assert {c: pytest.approx(v) for c, v in ref["AP"].items()} == af["AP"]
    # the numbering from a class list instead of the ground truth
    cl = tmp_path / "classes.txt"
    cl.write_text("3 jump\n7 run\n")
    af = _score(cli, tmp_path, _actionformer(tmp_path), gt, "--protocol", protocol, "--tiou", tiou,
                "--classes", cl)
    assert af["mAP"] == pytest.approx(ref["mAP"])


def test_actionformer_labels_need_a_numbering(cli, tmp_path):
    r = cli("evaluate", _actionformer(tmp_path), "--gt", _gt(tmp_path, False))
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "--classes" in r.stderr and "eval_results_p4.pkl:" in r.stderr
    cl = tmp_path / "c.txt"
    cl.write_text("walk\nsit\n")  # indices 0, 1: none of 3, 7
    r = cli("evaluate", _actionformer(tmp_path), "--gt", _gt(tmp_path, False), "--classes", cl)
    assert r.exit_code == 2 and "none of its class indices (3, 7)" in r.stderr


def test_class_lists_in_both_layouts(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("7 BaseballPitch\n9 Doing crunches\n")
    assert read_class_names(a) == {7: "BaseballPitch", 9: "Doing crunches"}
    b = tmp_path / "b.txt"
    b.write_text("BaseballPitch\nDoing crunches\n\n")
    assert read_class_names(b) == {0: "BaseballPitch", 1: "Doing crunches"}
    c = tmp_path / "c.txt"
    c.write_text("x\nx\n")
    with pytest.raises(InputError, match="given twice"):
        read_class_names(c)


def _mmaction_props():
    # BMN proposals for ActivityNet videos named with the 'v_' prefix, numpy floats as
    # mmaction2's post_processing leaves them
    return [{"video_name": "v_v1", "proposal_list": [
                {"score": 0.9, "segment": [np.float64(1.0), np.float64(3.0)]},
                {"score": 0.5, "segment": [np.float64(5.0), np.float64(6.5)]}]},
            {"video_name": "v_v2", "proposal_list": [
                {"score": np.float32(0.8), "segment": [0.0, 2.0]}]}]


def test_mmaction2_json_and_pickle_dumps_score_alike(cli, tmp_path):
    gt = _gt(tmp_path, False)
    props = _mmaction_props()
    js = tmp_path / "bmn.json"
    js.write_text(json.dumps({"version": "VERSION 1.3", "external_data": {}, "results": {
        r["video_name"][2:]: [{"score": float(p["score"]), "segment": [float(x) for x in p["segment"]]}
                              for p in r["proposal_list"]] for r in props}}))
    pk = tmp_path / "results.pkl"
    pk.write_bytes(pickle.dumps(props))
    a = _score(cli, tmp_path, js, gt, "--max-proposals", "3", table="AR@AN")
    b = _score(cli, tmp_path, pk, gt, "--max-proposals", "3", table="AR@AN")
    assert a["AR@AN"] == pytest.approx(b["AR@AN"]) and a["AUC"] == pytest.approx(b["AUC"])
    assert a["AUC"] > 0
    pred = read_pickle_results(pk)
    assert pred.kind == "proposals" and sorted(pred.videos_seen) == ["v1", "v2"]
    np.testing.assert_allclose(pred.segments, [[1, 3], [5, 6.5], [0, 2]])
    np.testing.assert_allclose(pred.score, [0.9, 0.5, 0.8], rtol=1e-6)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo ran > " + str(_Boom.marker),))


def test_a_pickle_naming_code_is_refused_without_running_it(cli, tmp_path):
    _Boom.marker = tmp_path / "ran"
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"video-id": ["v1"], "t-start": [1.0], "t-end": [2.0],
                                "label": [3], "score": _Boom()}))
    with pytest.raises(InputError, match=r"names (posix|nt)\.system, which is not plain data"):
        load_plain(p)
    out = tmp_path / "o.json"
    r = cli("evaluate", p, "--gt", _gt(tmp_path, True), "--json", out)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "refused without running it" in r.stderr
    assert not _Boom.marker.exists() and not out.exists()
    # a class instance (not a callable) is refused too
    q = tmp_path / "obj.pkl"
    q.write_bytes(pickle.dumps([InputError("x", "y")]))
    with pytest.raises(InputError, match="vidseg_cli.errors.InputError"):
        load_plain(q)


def test_unknown_and_broken_result_files_are_one_line(cli, tmp_path):
    gt = _gt(tmp_path, True)
    cases = {"other.pkl": pickle.dumps({"boxes": [1, 2]}), "cut.pkl": pickle.dumps(list(range(99)))[:-9],
             "short.pkl": pickle.dumps({"video-id": ["v1", "v2"], "t-start": [1.0], "t-end": [2.0, 3.0],
                                        "label": [3, 3], "score": [0.5, 0.4]})}
    msgs = {"other.pkl": "unknown results format", "cut.pkl": "not a readable pickle",
            "short.pkl": "'t-start' has 1 entries, 'video-id' 2"}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        r = cli("evaluate", p, "--gt", gt)
        assert r.exit_code == 2 and r.stderr.count("\n") == 1, (name, r.stderr)
        assert f"{p}: {msgs[name]}" in r.stderr, r.stderr
