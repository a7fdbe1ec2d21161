"""DAVIS J and F: hand-checked pieces, the real DAVIS 2016 masks, and golden numbers from
the official davis2017-evaluation scorer (tests/golden/davis_jf.json says how they were
made)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi

from tests.conftest import GOLDEN as GOLDEN_DIR
from tests.conftest import ROOT
from vidseg_cli.datasets import masks as mio
from vidseg_cli.errors import InputError
from vidseg_cli.metrics import davis as dm
from vidseg_cli.metrics.pixel_report import evaluate_pixel, pixel_table

DAVIS = ROOT.parent / "shared" / "refdata" / "davis2016"
ANN = DAVIS / "Annotations" / "480p"
GOLDEN = json.loads((GOLDEN_DIR / "davis_jf.json").read_text())

needs_davis = pytest.mark.skipif(not ANN.is_dir(), reason="../shared/refdata/davis2016 not present")


# -- hand-checked pieces -------------------------------------------------------------
def test_seg2bmap_square_by_hand():
    s = np.zeros((4, 4), bool)
    s[1:3, 1:3] = True
    want = np.array(
        [[1, 1, 1, 0],
         [1, 0, 1, 0],
         [1, 1, 1, 0],
         [0, 0, 0, 0]], bool)
    assert np.array_equal(dm.seg2bmap(s), want)


def test_seg2bmap_image_border_is_not_a_boundary():
    assert not dm.seg2bmap(np.ones((3, 5), bool)).any()
    # a mask filling the last column: the column left of it is the boundary, down to the
    # last row (where only the right neighbour counts); the mask's own column is not
    s = np.zeros((3, 3), bool)
    s[:, 2] = True
    assert np.array_equal(dm.seg2bmap(s), np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], bool))


def test_seg2bmap_is_vectorised_over_frames():
    rng = np.random.default_rng(1)
    m = rng.random((3, 7, 9)) < 0.4
    assert np.array_equal(dm.seg2bmap(m), np.stack([dm.seg2bmap(f) for f in m]))


def test_disk_and_radius():
    want = np.array(
        [[0, 0, 1, 0, 0],
         [0, 1, 1, 1, 0],
         [1, 1, 1, 1, 1],
         [0, 1, 1, 1, 0],
         [0, 0, 1, 0, 0]], np.uint8)
    assert np.array_equal(dm.disk(2), want)
    assert dm.boundary_radius(480, 854) == 8  # ceil(0.008 * 979.6)
    assert dm.boundary_radius(240, 320) == 4  # ceil(0.008 * 400) = ceil(3.2)
    assert dm.boundary_radius(10, 10, bound_th=3) == 3


def test_jaccard_by_hand():
    g = np.zeros((2, 4, 4), bool)
    p = np.zeros((2, 4, 4), bool)
    g[0, 1:3, 1:3] = True  # 4 px
    p[0, 1:3, 1:4] = True  # 6 px, holding the 4
    # frame 1: both empty -> 1
    assert dm.jaccard(g, p) == pytest.approx([4 / 6, 1.0])
    assert dm.jaccard(g[0], np.zeros((4, 4), bool)) == 0.0


def test_boundary_f_by_hand():
    # gt: 2x2 square at rows 1-2, cols 1-2 of 6x6; boundary (by hand, as above):
    # (0,0) (0,1) (0,2) (1,0) (1,2) (2,0) (2,1) (2,2). pred: the same moved 2 columns
    # right. Radius 1 (a cross): 5 of 8 predicted boundary pixels have a true boundary
    # pixel within reach ((0,2) (0,3) (1,2) (2,2) (2,3)), and 5 of 8 true ones a predicted
    # one ((0,1) (0,2) (1,2) (2,1) (2,2)): P = R = F = 5/8.
    g = np.zeros((6, 6), bool)
    g[1:3, 1:3] = True
    p = np.zeros((6, 6), bool)
    p[1:3, 3:5] = True
    assert dm.boundary_f(g, p, bound_th=1) == pytest.approx(0.625)
    assert dm._full_frame_f(g, p, bound_th=1) == pytest.approx(0.625)
    # within tolerance 2 everything matches
    assert dm.boundary_f(g, p, bound_th=2) == pytest.approx(1.0)


def test_boundary_f_empty_cases():
    z = np.zeros((5, 5), bool)
    o = z.copy()
    o[1:3, 1:3] = True
    assert dm.boundary_f(z, z) == 1.0  # nothing to find, nothing found
    assert dm.boundary_f(o, z) == 0.0  # P = 1, R = 0
    assert dm.boundary_f(z, o) == 0.0  # P = 0, R = 1


def test_cropped_f_equals_whole_frame_f():
    rng = np.random.default_rng(7)
    for _ in range(100):
        h, w = rng.integers(4, 20, size=2)
        g = rng.random((h, w)) < rng.random()
        p = rng.random((h, w)) < rng.random() * 0.5
        g[: rng.integers(0, h)] = False  # masks that stop short of / reach the borders
        p[:, rng.integers(0, w):] = False
        for th in (1, 2, 0.2):
            assert dm.boundary_f(g, p, bound_th=th) == pytest.approx(
                dm._full_frame_f(g, p, bound_th=th), abs=1e-12
            )


def test_decay_bins_by_hand():
    # n=10: linspace(1,10,5) = 1, 3.25, 5.5, 7.75, 10 -> edges 0, 2, 5, 7, 9
    assert dm.decay_bins(10) == [(0, 3), (2, 6), (5, 8), (7, 10)]
    # n=4: 1, 1.75, 2.5, 3.25, 4: 2.5 rounds up (the +1e-10), edges 0, 1, 2, 2, 3
    assert dm.decay_bins(4) == [(0, 2), (1, 3), (2, 3), (2, 4)]


def test_statistics_by_hand():
    m, r, d = dm.davis_statistics([1.0, 0.4, 0.6, 0.2])
    assert (m, r) == pytest.approx((0.55, 0.5))
    assert d == pytest.approx(0.7 - 0.4)  # bins [1, .4] and [.6, .2]
    m, r, d = dm.davis_statistics([np.nan, 1.0, 0.0])
    assert m == pytest.approx(0.5)
    assert r == pytest.approx(1 / 3)  # NaN > 0.5 is False, counted as a miss


def test_scored_frames():
    assert dm.scored_frames(5, "unsupervised") == slice(0, 5)
    assert range(5)[dm.scored_frames(5, "semi-supervised")] == range(1, 4)
    with pytest.raises(ValueError):
        dm.scored_frames(5, "interactive")


# -- golden numbers from the official scorer -----------------------------------------
def _erode(m: np.ndarray, k: int) -> np.ndarray:
    """Per-frame binary erosion by a k x k square, outside the image counting as empty:
    scipy.ndimage.binary_erosion's result (as the golden file was made), but separable."""
    return ndi.minimum_filter(m, size=(1, k, k), mode="constant", cval=0)


def _dilate(m: np.ndarray, k: int) -> np.ndarray:
    return ndi.maximum_filter(m, size=(1, k, k), mode="constant", cval=0)


def damage(kind: str, m: np.ndarray) -> np.ndarray:
    """The damaged copies tests/golden/davis_jf.json was made from (its "damages")."""
    t = m.shape[0]
    if kind == "identity":
        return m.copy()
    if kind == "eroded":
        return _erode(m, 7)
    if kind == "shifted":
        out = np.zeros_like(m)
        out[:, 6:, 10:] = m[:, :-6, :-10]
        return out
    if kind == "blanked":
        out = m.copy()
        out[1::4] = False
        return out
    if kind == "mixed":
        out = m.copy()
        half = t // 2
        out[:half] = _erode(m[:half], 3)
        out[half:] = _dilate(m[half:], 9)
        out[::3, 20:40, 30:50] = True
        out[-1] = False
        return out
    if kind == "empty":
        return np.zeros_like(m)
    raise ValueError(kind)


@pytest.fixture(scope="module")
def gt_masks() -> dict[str, np.ndarray]:
    out = {}
    for seq, n in GOLDEN["frames"].items():
        files = sorted((ANN / seq).glob("*.png"))[:n]
        out[seq] = np.stack([mio.read_png_mask(f) for f in files])
    return out


def _close(got: dict, want: dict, tol: float = 1e-4) -> None:
    for m in ("J", "F"):
        for k in ("mean", "recall", "decay"):
            assert got[m][k] == pytest.approx(want[m][k], abs=tol), (m, k)


CASES = [(k, t) for k, e in GOLDEN["variants"].items() for t in dm.TASKS if t in e]


@needs_davis
@pytest.mark.parametrize(("kind", "task"), CASES)
def test_matches_official_scorer(gt_masks, kind, task):
    entry = GOLDEN["variants"][kind]
    per = {}
    for seq, g in gt_masks.items():
        p = damage(kind, g)
        assert int(p.sum()) == entry["foreground_pixels"][seq]  # the same damaged copy
        sel = dm.scored_frames(g.shape[0], task)
        per[seq] = dm.evaluate_sequence(g[sel], p[sel])
        _close(per[seq], entry[task]["per_sequence"][seq])
    overall = dm.summarize(per)
    _close(overall, entry[task]["overall"])
    assert overall["J&F"] == pytest.approx(entry[task]["overall"]["J&F"], abs=1e-4)


@needs_davis
def test_empty_prediction_semi_supervised(gt_masks):
    # The official scorer exits here (no object index in the results); we score it:
    # every frame J = F = 0 (an empty prediction against a non-empty truth).
    g = gt_masks["breakdance"]
    sel = dm.scored_frames(g.shape[0], "semi-supervised")
    r = dm.evaluate_sequence(g[sel], np.zeros_like(g[sel]))
    assert r["frames"] == g.shape[0] - 2
    for m in ("J", "F"):
        assert r[m] == {"mean": 0.0, "recall": 0.0, "decay": 0.0}


def _davis_tree(tmp: Path, gt_masks: dict, kind: str, scale: int = 255) -> tuple[Path, Path]:
    """A DAVIS root (links to the real ground truth's first frames) and a results folder
    of damaged masks written as 0/`scale` PNGs."""
    root = tmp / "davis"
    res = tmp / "results"
    for seq, g in gt_masks.items():
        (root / "Annotations" / "480p" / seq).mkdir(parents=True)
        (res / seq).mkdir(parents=True)
        files = sorted((ANN / seq).glob("*.png"))[: g.shape[0]]
        p = damage(kind, g)
        for f, m in zip(files, p):
            os.symlink(f, root / "Annotations" / "480p" / seq / f.name)
            cv2.imwrite(str(res / seq / f.name), m.astype(np.uint8) * scale)
    return root, res


@needs_davis
@pytest.mark.parametrize("task", dm.TASKS)
def test_pixel_report_matches_official_scorer_from_pngs(tmp_path, gt_masks, task):
    root, res = _davis_tree(tmp_path, gt_masks, "mixed")
    if task == "semi-supervised":  # first and last frames are not read: may be missing
        for seq in gt_masks:
            pngs = sorted((res / seq).glob("*.png"))
            pngs[0].unlink()
            pngs[-1].unlink()
    r = evaluate_pixel([str(res)], str(root), davis_task=task)
    want = GOLDEN["variants"]["mixed"][task]
    _close(r, want["overall"])
    for seq in gt_masks:
        _close(r["per_sequence"][seq], want["per_sequence"][seq])
    assert r["warnings"] == []
    json.dumps(r)  # JSON-able
    from rich.console import Console

    con = Console(record=True, width=160)
    con.print(pixel_table(r))
    text = con.export_text()
    assert "blackswan" in text and "J mean" in text


@needs_davis
def test_real_davis_against_itself():
    r = evaluate_pixel([str(ANN / "blackswan")], str(DAVIS))
    assert r["num_sequences"] == 1
    assert r["per_sequence"]["blackswan"]["frames"] == 50
    for m in ("J", "F"):
        assert r[m] == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    # three other sequences have no prediction: said, not scored
    assert any("3 ground-truth" in w for w in r["warnings"])


# -- bad input -----------------------------------------------------------------------
def _small_tree(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "gt" / "Annotations" / "480p" / "seq"
    res = tmp / "res" / "seq"
    root.mkdir(parents=True)
    res.mkdir(parents=True)
    m = np.zeros((12, 16), np.uint8)
    m[3:8, 4:10] = 255
    for i in range(3):
        cv2.imwrite(str(root / f"{i:05d}.png"), m)
        cv2.imwrite(str(res / f"{i:05d}.png"), m)
    return tmp / "gt", tmp / "res"


def test_small_tree_scores_one(tmp_path):
    gt, res = _small_tree(tmp_path)
    r = evaluate_pixel([str(res)], str(gt))
    assert r["J"]["mean"] == 1.0 and r["F"]["mean"] == 1.0


def test_wrong_size_png_names_the_file(tmp_path):
    gt, res = _small_tree(tmp_path)
    bad = res / "seq" / "00001.png"
    cv2.imwrite(str(bad), np.zeros((12, 15), np.uint8))
    with pytest.raises(InputError) as e:
        evaluate_pixel([str(res)], str(gt))
    assert str(bad) in str(e.value) and "15x12" in str(e.value)
    assert "\n" not in str(e.value)


def test_unreadable_png_names_the_file(tmp_path):
    gt, res = _small_tree(tmp_path)
    bad = res / "seq" / "00002.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="not a readable PNG") as e:
        evaluate_pixel([str(res)], str(gt))
    assert str(bad) in str(e.value)


def test_missing_result_frame_names_the_file(tmp_path):
    gt, res = _small_tree(tmp_path)
    (res / "seq" / "00001.png").unlink()
    with pytest.raises(InputError, match="missing frame") as e:
        evaluate_pixel([str(res)], str(gt))
    assert "00001.png" in str(e.value)


def test_ground_truth_frames_of_different_sizes(tmp_path):
    gt, res = _small_tree(tmp_path)
    bad = gt / "Annotations" / "480p" / "seq" / "00002.png"
    cv2.imwrite(str(bad), np.zeros((10, 16), np.uint8))
    with pytest.raises(InputError) as e:
        evaluate_pixel([str(res)], str(gt))
    assert str(bad) in str(e.value)


def test_prediction_without_ground_truth(tmp_path):
    gt, res = _small_tree(tmp_path)
    extra = res / "other"
    extra.mkdir()
    cv2.imwrite(str(extra / "00000.png"), np.zeros((12, 16), np.uint8))
    r = evaluate_pixel([str(res)], str(gt))
    assert r["num_sequences"] == 1
    assert any(w.startswith("1 prediction(s) have no ground truth") for w in r["warnings"])
    with pytest.raises(InputError, match="'other' has no ground truth"):
        evaluate_pixel([str(res)], str(gt), strict=True)


def test_nothing_pairs(tmp_path):
    gt, res = _small_tree(tmp_path)
    (res / "seq").rename(res / "elsewhere")
    with pytest.raises(InputError, match="none of the 1 prediction"):
        evaluate_pixel([str(res)], str(gt))


def test_unknown_task(tmp_path):
    gt, res = _small_tree(tmp_path)
    with pytest.raises(InputError, match="unknown task"):
        evaluate_pixel([str(res)], str(gt), davis_task="interactive")
