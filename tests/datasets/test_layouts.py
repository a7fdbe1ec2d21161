"""vidseg check-dataset and datasets/layouts: the reference datasets and a synth set pass;
damaged copies give exactly one line per problem and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from vidseg_cli.datasets.layouts.detect import detect

SMALL = ["--size", "64x48", "--duration", "6,8", "--action-length", "2,3", "--train", "2",
         "--test", "1", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli as group

    out = tmp_path_factory.mktemp("synth") / "set"
    res = CliRunner().invoke(group, ["synth", "-o", str(out), *SMALL], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def _lines(res, kind: str) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith(f"vidseg check-dataset: {kind}: ")]


def test_detects_every_layout(refdata, synth_set, tmp_path):
    assert detect(refdata / "thumos14").kind == "thumos14"
    assert len(detect(refdata / "thumos14").annotations) == 2
    assert detect(refdata / "thumos14" / "annotation_test").kind == "thumos14"
    assert detect(refdata / "davis2016").kind == "davis"
    lay = detect(refdata / "jhmdb")
    assert lay.kind == "jhmdb" and lay.frames == refdata / "jhmdb" / "frames"
    assert detect(synth_set).kind == "synth"
    assert detect(synth_set / "gt.json").kind == "activitynet"
    custom = tmp_path / "custom"
    custom.mkdir()
    shutil.copy(synth_set / "videos" / "synth_test_0000.mp4", custom)
    shutil.copy(synth_set / "gt.json", custom / "mine.json")
    lay = detect(custom)
    assert lay.kind == "custom" and lay.videos == custom and lay.annotations == (custom / "mine.json",)


def test_thumos14_annotations_only(cli, refdata, tmp_path):
    out = tmp_path / "report.json"
    res = cli("check-dataset", refdata / "thumos14", "--json", out)
    assert res.exit_code == 0, res.stderr
    assert "checks skipped: videos (no --videos given); durations (no --videos given)" in res.stderr
    rep = json.loads(out.read_text())
    assert rep["layout"]["kind"] == "thumos14" and rep["problems"] == []
    assert rep["checks_run"] == ["annotations", "segments", "classes", "splits"]
    assert set(rep["checks_skipped"]) == {"videos", "durations"}
    assert rep["counts"]["instances_test"] == 3358
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_thumos14_misspelled_class_and_empty_split(cli, refdata, tmp_path):
    root = tmp_path / "thumos14"
    for sub in ("annotation_test", "annotation_val"):
        shutil.copytree(refdata / "thumos14" / sub, root / sub)
    test = root / "annotation_test"
    (test / "GolfSwing_test.txt").rename(test / "GolfSwnig_test.txt")
    for f in (root / "annotation_val").glob("*_val.txt"):
        f.write_text("")
    res = cli("check-dataset", root, "--json", "-")
    assert res.exit_code == 2
    errors = _lines(res, "error")
    assert errors == [
        f"vidseg check-dataset: error: {test / 'GolfSwnig_test.txt'}: unknown class 'GolfSwnig' "
        "(not in detclasslist.txt) (did you mean 'GolfSwing'?)",
        f"vidseg check-dataset: error: {root / 'annotation_val'}: subset 'val' has no annotations "
        "(every <Class>_val.txt is empty)",
    ]
    assert _lines(res, "warning") == []
    rep = json.loads(res.stdout)
    assert [(p["check"], p["severity"]) for p in rep["problems"]] == [("classes", "error"),
                                                                     ("splits", "error")]


def test_davis2016_passes(cli, refdata):
    res = cli("check-dataset", refdata / "davis2016")
    assert res.exit_code == 0, res.stderr
    assert _lines(res, "error") == [] and _lines(res, "warning") == []
    assert "checks run: masks" in res.stderr and "splits (no split files" in res.stderr


def test_davis_mask_of_the_wrong_size(cli, refdata, tmp_path):
    root = tmp_path / "davis"
    shutil.copytree(refdata / "davis2016", root)
    bad = root / "Annotations" / "480p" / "blackswan" / "00003.png"
    img = cv2.imread(str(bad), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(bad), cv2.resize(img, (427, 240), interpolation=cv2.INTER_NEAREST))
    res = cli("check-dataset", root)
    assert res.exit_code == 2
    assert _lines(res, "error") == [
        f"vidseg check-dataset: error: {bad}: mask is 427x240 (WxH), the frames are 854x480 (WxH)"
    ]


def test_synth_set_passes(cli, synth_set):
    res = cli("check-dataset", synth_set)
    assert res.exit_code == 0, res.stderr
    assert _lines(res, "error") == [] and _lines(res, "warning") == []
    assert "checks skipped: none" in res.stderr


def test_synth_annotation_past_the_end_and_unknown_class(cli, synth_set, tmp_path):
    root = tmp_path / "set"
    shutil.copytree(synth_set, root)
    gt = json.loads((root / "gt.json").read_text())
    v0, v1 = "synth_test_0000", "synth_train_0001"
    end = gt["database"][v0]["duration"] + 5.0
    seg0 = gt["database"][v0]["annotations"][0]
    seg0["segment"][1] = end
    gt["database"][v1]["annotations"][0]["label"] = "Orbitt"
    (root / "gt.json").write_text(json.dumps(gt))
    res = cli("check-dataset", root, "--quiet")
    assert res.exit_code == 2
    gj = root / "gt.json"
    dur = gt["database"][v0]["duration"]
    assert _lines(res, "error") == [
        f"vidseg check-dataset: error: {gj}: unknown class 'Orbitt' (1 annotation(s), first in "
        f"video '{v1}'; not in the taxonomy) (did you mean 'Orbit'?)",
        f"vidseg check-dataset: error: {gj}: video '{v0}': segment [{seg0['segment'][0]:g}, "
        f"{end:g}] ({seg0['label']}) ends after the video ({dur:g} s)",
    ]
    assert "checks run" not in res.stderr  # --quiet: problems only


def test_missing_video_and_bad_segment(cli, synth_set, tmp_path):
    root = tmp_path / "set"
    shutil.copytree(synth_set, root)
    (root / "videos" / "synth_train_0000.mp4").unlink()
    gt = json.loads((root / "gt.json").read_text())
    gt["database"]["synth_test_0000"]["annotations"][0]["segment"] = [3.0, 2.0]
    (root / "gt.json").write_text(json.dumps(gt))
    res = cli("check-dataset", root)
    assert res.exit_code == 2
    errors = _lines(res, "error")
    assert len(errors) == 2
    assert "ends at or before its start" in errors[0]
    assert errors[1].endswith("missing: no video file (synth_train_0000.mp4, ...) or frame folder "
                              "for video 'synth_train_0000'")


def test_not_a_dataset(cli, tmp_path):
    res = cli("check-dataset", tmp_path)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"vidseg check-dataset: error: {tmp_path}: not a known dataset layout")


def test_jhmdb_frames_that_do_not_match_the_masks(cli, refdata, tmp_path):
    res = cli("check-dataset", refdata / "jhmdb")
    assert res.exit_code == 0, res.stderr  # 21 videos without frames: one warning line
    assert _lines(res, "error") == [] and len(_lines(res, "warning")) == 1
    root = tmp_path / "jhmdb"
    shutil.copytree(refdata / "jhmdb", root)
    vid = "Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"
    for f in sorted((root / "frames" / vid).glob("*.png"))[-5:]:
        f.unlink()
    res = cli("check-dataset", root)
    assert res.exit_code == 2
    mat = root / "puppet_mask" / "catch" / f"{vid}.mat"
    assert _lines(res, "error") == [
        f"vidseg check-dataset: error: {mat}: 40 masks for 35 frames ({root / 'frames' / vid})"
    ]
