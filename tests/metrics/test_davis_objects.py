"""DAVIS 2017 multi-object J and F against golden numbers from the official
davis2017-evaluation scorer, run locally on the hand-made two- and three-object sequences
that `cases()` builds (tests/golden/davis2017_objects.json says how), under both tasks;
the matching of proposals to objects, void pixels, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import GOLDEN
from vidseg_cli.errors import InputError
from vidseg_cli.metrics.davis_objects import evaluate_objects

H, W = 60, 80


def _disk(cy, cx, r):
    y, x = np.mgrid[:H, :W]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def _box(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return m


def cases() -> dict[str, dict[str, np.ndarray]]:
    """{sequence: {"gt": (T, H, W) uint8, "semi": ..., "unsup": ...}}: ground truth with
    object indices and a void band (255), results for the semi-supervised task (indices as
    the ground truth's) and for the unsupervised one (proposals in another order, one
    spurious)."""
    out = {}
    # two objects: a disk moving right, a box moving down; void band on the left edge
    T = 7
    gt = np.zeros((T, H, W), np.uint8)
    semi = np.zeros_like(gt)
    for t in range(T):
        a = _disk(20, 15 + 5 * t, 8)
        b = _box(5 + 4 * t, 20 + 4 * t, 50, 70)
        gt[t][b] = 2
        gt[t][a] = 1
        gt[t][:, :3] = 255
        pa = _disk(21, 16 + 5 * t, 7 + (t % 2))  # slightly off and breathing
        pb = _box(6 + 4 * t, 22 + 4 * t, 48, 70) if t != 3 else np.zeros((H, W), bool)  # lost once
        semi[t][pb] = 2
        semi[t][pa] = 1
        semi[t][:, :2] = 1  # a sliver in the void band
    unsup = np.zeros_like(semi)
    unsup[semi == 1] = 2  # the proposals in the other order
    unsup[semi == 2] = 1
    unsup[:, 50:58, 5:12] = 3  # a spurious proposal
    out["two"] = {"gt": gt, "semi": semi, "unsup": unsup}
    # three objects, one appearing only from frame 2 and one leaving; overlap handled by order
    T = 9
    gt = np.zeros((T, H, W), np.uint8)
    semi = np.zeros_like(gt)
    for t in range(T):
        c1 = _box(10, 30, 5 + 3 * t, 25 + 3 * t)
        c2 = _disk(40, 60 - 2 * t, 10)
        c3 = _box(45, 58, 10, 30) if t < 6 else np.zeros((H, W), bool)
        gt[t][c1] = 1
        gt[t][c2] = 2
        gt[t][c3] = 3
        gt[t][0, :] = 255
        semi[t][_box(11, 30, 6 + 3 * t, 24 + 3 * t)] = 1
        semi[t][_disk(40, 61 - 2 * t, 9 if t < 5 else 12)] = 2
        if t < 7:  # one frame too long
            semi[t][_box(44, 58, 12, 30)] = 3
    unsup = np.zeros_like(semi)
    for old, new in ((1, 3), (2, 1), (3, 2)):
        unsup[semi == old] = new
    unsup[:, 2:6, 70:78] = 4
    out["three"] = {"gt": gt, "semi": semi, "unsup": unsup}
    return out


def _write(folder, masks):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pal = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [0] * (3 * 250) + [224, 224, 192]
    for t, m in enumerate(masks):
        im = Image.fromarray(m, mode="P")
        im.putpalette(pal)
        im.save(folder / f"{t:05d}.png")


@pytest.mark.parametrize("task", ["semi-supervised", "unsupervised"])
def test_matches_the_davis2017_scorer(cli, tmp_path, task):
    key = "semi" if task == "semi-supervised" else "unsup"
    for seq, c in cases().items():
        _write(tmp_path / "gt" / "Annotations" / "480p" / seq, c["gt"])
        _write(tmp_path / "res" / seq, c[key])
    out = tmp_path / "r.json"
    r = cli("evaluate", tmp_path / "res", "--gt", tmp_path / "gt", "--davis-task", task, "--json", out)
    assert r.exit_code == 0, r.stderr
    assert "DAVIS 2017 J and F per object" in r.stdout
    res = json.loads(out.read_text())
    gold = json.loads((GOLDEN / "davis2017_objects.json").read_text())["tasks"][task]
    for m in ("J", "F"):
        for ours, theirs in (("mean", "M"), ("recall", "R"), ("decay", "D")):
            assert res[m][ours] == pytest.approx(float(np.mean(gold[m][theirs])), abs=1e-6), (m, ours)
        # per object: the scorer lists objects in its assignment's row order; the set of
        # (mean, recall, decay) triples is the same
        ours_obj = sorted((o[m]["mean"], o[m]["recall"], o[m]["decay"]) for o in res["per_object"].values())
        theirs_obj = sorted(zip(gold[m]["M"], gold[m]["R"], gold[m]["D"]))
        np.testing.assert_allclose(ours_obj, theirs_obj, atol=1e-6)
    assert res["num_objects"] == 5
    if task == "unsupervised":  # the proposals were renumbered: the matching undoes it
        matched = {k: v["matched"] for k, v in res["per_object"].items()}
        assert matched == {"two_1": 2, "two_2": 1, "three_1": 3, "three_2": 1, "three_3": 2}


def test_objects_by_hand():
    gt = np.zeros((2, 4, 4), np.uint8)
    gt[:, :2, :2] = 1
    gt[:, 2:, 2:] = 2
    gt[:, 0, 3] = 255
    pred = np.zeros_like(gt)
    pred[:, :2, :2] = 2  # object 1 found as proposal 2
    pred[:, 2:, 2:] = 1
    pred[:, 0, 3] = 1  # on a void pixel: no effect unsupervised
    objs = evaluate_objects(gt, pred, "unsupervised", "r")
    assert [o["matched"] for o in objs] == [2, 1]
    assert all(o["J"]["mean"] == 1.0 for o in objs)
    # semi-supervised: indices are identities, so both objects are missed entirely
    objs = evaluate_objects(gt, pred, "semi-supervised", "r")
    assert [o["J"]["mean"] for o in objs] == [0.0, 0.0]


def test_too_many_objects_is_one_line(cli, tmp_path):
    gt = np.zeros((3, 8, 8), np.uint8)
    gt[:, :4, :4] = 1
    pred = gt.copy()
    pred[:, 5:, 5:] = 2
    with pytest.raises(InputError, match="object index 2 in the results, but the ground truth has 1"):
        evaluate_objects(gt, pred, "semi-supervised", "r")
    pred[:, 7, 7] = 21
    with pytest.raises(InputError, match="at most 20 proposals"):
        evaluate_objects(gt, pred, "unsupervised", "r")
    _write(tmp_path / "gt" / "s", gt)
    _write(tmp_path / "res" / "s", pred)
    out = tmp_path / "o.json"
    r = cli("evaluate", tmp_path / "res", "--gt", tmp_path / "gt", "--json", out)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "at most 20 proposals" in r.stderr
    assert not out.exists()


def test_our_labels_file_scores_as_the_same_result_pngs(cli, tmp_path):
    from vidseg_cli import store

    c = cases()["three"]
    _write(tmp_path / "gt" / "three", c["gt"])
    _write(tmp_path / "res" / "three", c["unsup"])
    store.write_labels(tmp_path / "three.labels.h5", c["unsup"], video_id="three", num_frames=len(c["unsup"]),
                       fps=25.0, class_names=["background", "p1", "p2", "p3", "p4"])
    got = []
    for pred in (tmp_path / "res", tmp_path / "three.labels.h5"):
        out = tmp_path / f"{len(got)}.json"
        r = cli("evaluate", pred, "--gt", tmp_path / "gt", "--json", out)
        assert r.exit_code == 0, r.stderr
        got.append(json.loads(out.read_text()))
    assert got[0]["per_object"] == got[1]["per_object"] and got[0]["num_objects"] == 3
