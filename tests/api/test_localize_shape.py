"""propose and localize as runners: `load(Options(...)).run(inputs, outputs)` from Python;
localize's two outputs (detections, frame_scores) both decide whether a rerun skips a
video; --fuse pairs the flow features by their video_id."""

from __future__ import annotations

import json

import numpy as np
import torch

from tests.api.test_localize_fsn import CLASSES, _features
from tests.api.test_propose import tiny_network, write_frames
from vidseg_cli import store
from vidseg_cli.api import localize, propose
from vidseg_cli.api.localize import DetectionsSummary
from vidseg_cli.api.propose import ProposalsSummary
from vidseg_cli.models import MODELS, save_checkpoint

torch.set_num_threads(1)


def _fsn_setup(tmp_path):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "fsn.ckpt", MODELS.build("fsn", in_features=6, num_classes=3, hidden=8), CLASSES)
    (tmp_path / "rgb").mkdir()
    for v in ("v1", "v2"):
        _features(tmp_path / "rgb" / f"{v}.features.h5", v, rng.normal(size=(9, 6)), 47)
    return sorted((tmp_path / "rgb").glob("*.h5"))


def test_localize_rerun_redoes_a_video_missing_its_frame_scores(cli, tmp_path):
    rgb = _fsn_setup(tmp_path)
    out = tmp_path / "out"
    args = ("localize", *rgb, "--weights", tmp_path / "fsn.ckpt", "-o", out)
    r = cli(*args, "--json", tmp_path / "first.json")
    assert r.exit_code == 0, r.output
    first = json.loads((tmp_path / "first.json").read_text())
    assert sorted(first["results"][0]) == ["detections", "frame_scores", "frames", "input", "output"]
    uid = {p.name: store.read_detections(p).attrs["uid"] for p in out.glob("*.detections.h5")}
    (out / "v2.frame_scores.h5").unlink()
    r = cli(*args, "--json", tmp_path / "again.json")
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["skipped"] == [str(out / "v1.detections.h5")]
    assert again["done"] == [str(out / "v2.detections.h5")]
    assert f"{out / 'v2.detections.h5'}: exists but {out / 'v2.frame_scores.h5'} does not: redone" in r.stderr
    assert (out / "v2.frame_scores.h5").is_file()
    assert store.read_detections(out / "v1.detections.h5").attrs["uid"] == uid["v1.detections.h5"]
    assert store.read_detections(out / "v2.detections.h5").attrs["uid"] != uid["v2.detections.h5"]
    r = cli(*args, "--json", tmp_path / "third.json")
    assert r.exit_code == 0, r.output
    third = json.loads((tmp_path / "third.json").read_text())
    assert third["done"] == [] and len(third["skipped"]) == 2


def test_two_runs_into_one_folder_keep_their_own_frame_scores(cli, tmp_path):
    """-o names the frame scores too: a second run of the same video under another name
    neither replaces the first's frame_scores nor is skipped because of them."""
    rgb = _fsn_setup(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert localize.frame_scores_path(out / "a.h5") == out / "a.frame_scores.h5"
    assert localize.frame_scores_path(out / "v1.detections.h5") == out / "v1.frame_scores.h5"
    r = cli("localize", rgb[0], "--weights", tmp_path / "fsn.ckpt", "-o", out / "a.h5")
    assert r.exit_code == 0, r.output
    uid = store.read_frame_scores(out / "a.frame_scores.h5").attrs["uid"]
    r = cli("localize", rgb[0], "--weights", tmp_path / "fsn.ckpt", "-o", out / "b.h5", "--top-k", "1")
    assert r.exit_code == 0, r.output
    assert store.read_frame_scores(out / "a.frame_scores.h5").attrs["uid"] == uid
    assert store.read_frame_scores(out / "b.frame_scores.h5").attrs["inputs"][0]["path"].endswith("v1.features.h5")
    assert sorted(q.name for q in out.iterdir()) == ["a.frame_scores.h5", "a.h5", "b.frame_scores.h5", "b.h5"]
    # skip and --overwrite apply to both outputs
    (out / "b.frame_scores.h5").unlink()
    r = cli("localize", rgb[0], "--weights", tmp_path / "fsn.ckpt", "-o", out / "b.h5")
    assert f"{out / 'b.h5'}: exists but {out / 'b.frame_scores.h5'} does not: redone" in r.stderr
    r = cli("localize", rgb[0], "--weights", tmp_path / "fsn.ckpt", "-o", out / "a.h5")
    assert "exists, skipped" in r.stderr
    assert store.read_frame_scores(out / "a.frame_scores.h5").attrs["uid"] == uid


def test_fsn_runner_from_python(tmp_path):
    rgb = _fsn_setup(tmp_path)
    loc = localize.load(localize.Options(weights=str(tmp_path / "fsn.ckpt"), method="fsn", device="cpu"))
    det, fs = tmp_path / "d" / "x.detections.h5", tmp_path / "d" / "x.frame_scores.h5"
    det.parent.mkdir()
    s = loc.run({"features": rgb[0]}, {"detections": det, "frame_scores": fs})
    assert isinstance(s, DetectionsSummary)
    assert s.to_json() == {"input": str(rgb[0]), "output": str(det), "frame_scores": str(fs),
                           "detections": s.detections, "frames": 47}
    assert store.read_frame_scores(fs)["probs"].shape == (47, 3)
    assert len(store.read_detections(det)["scores"]) == s.detections
    # without a frame_scores output: named after the detections, beside them
    s = loc.run({"features": rgb[1]}, {"detections": tmp_path / "d" / "y.h5"})
    assert s.frame_scores == str(tmp_path / "d" / "y.frame_scores.h5")
    assert (tmp_path / "d" / "y.frame_scores.h5").is_file()


def test_fuse_pairs_flow_features_by_video_id(cli, tmp_path):
    rgb = _fsn_setup(tmp_path)
    rng = np.random.default_rng(1)
    save_checkpoint(tmp_path / "flow.ckpt", MODELS.build("fsn", in_features=4, num_classes=3, hidden=8), CLASSES)
    (tmp_path / "flow").mkdir()
    # named otherwise than the RGB files: found by the video_id attribute
    _features(tmp_path / "flow" / "a.features.h5", "v2", rng.normal(size=(9, 4)), 47, stream="flow")
    _features(tmp_path / "flow" / "b.features.h5", "v1", rng.normal(size=(9, 4)), 47, stream="flow")
    write_frames(tmp_path / "flow" / "v1.frames.h5", 5)  # another kind: ignored
    opts = localize.Options(weights=str(tmp_path / "fsn.ckpt"), method="fsn", device="cpu",
                            fuse_weights=str(tmp_path / "flow.ckpt"))
    s = localize.load(opts).run({"features": rgb[0], "flow-features": tmp_path / "flow"},
                                {"detections": tmp_path / "v1.detections.h5"})
    inputs = [i["path"] for i in store.read_detections(tmp_path / "v1.detections.h5").attrs["inputs"]]
    assert str((tmp_path / "flow" / "b.features.h5").resolve()) in inputs
    assert store.read_frame_scores(s.frame_scores).attrs["fused"]
    # a video without flow features: that input fails, the other is done
    (tmp_path / "flow" / "a.features.h5").unlink()
    r = cli("localize", *rgb, "--weights", tmp_path / "fsn.ckpt", "--fuse", tmp_path / "flow",
            "--fuse-weights", tmp_path / "flow.ckpt", "-o", tmp_path / "out", "-q")
    assert r.exit_code == 1
    assert f"vidseg localize: error: {rgb[1]}: no flow features for video 'v2' in {tmp_path / 'flow'}" in r.stderr
    assert (tmp_path / "out" / "v1.detections.h5").is_file()


def test_propose_and_scnn_runners_from_python(tmp_path):
    write_frames(tmp_path / "v1.frames.h5", 40)
    prop = propose.load(propose.Options(method="sliding", lengths=(16, 32)))
    s = prop.run({"frames": tmp_path / "v1.frames.h5"}, {"proposals": tmp_path / "v1.proposals.h5"})
    assert isinstance(s, ProposalsSummary) and s.warnings == []
    n = len(store.read_proposals(tmp_path / "v1.proposals.h5")["scores"])
    assert s.to_json() == {"input": str(tmp_path / "v1.frames.h5"), "output": str(tmp_path / "v1.proposals.h5"),
                           "windows": n, "kept": n}
    write_frames(tmp_path / "short.frames.h5", 8)
    s = prop.run({"frames": tmp_path / "short.frames.h5"}, {"proposals": tmp_path / "short.proposals.h5"})
    assert s.windows == 0 and "8 frames, shorter than the shortest window (16)" in s.warnings[0]
    assert "warnings" not in s.to_json()
    tiny_network(tmp_path / "loc.ckpt", "localization", CLASSES, window_lengths=[16, 32])
    loc = localize.load(localize.Options(weights=str(tmp_path / "loc.ckpt"), method="scnn", device="cpu"))
    s = loc.run({"proposals": tmp_path / "v1.proposals.h5", "frames": tmp_path},
                {"detections": tmp_path / "v1.detections.h5"})
    assert isinstance(s, DetectionsSummary)
    assert list(s.to_json()) == ["input", "output", "proposals", "foreground", "detections"]
    assert s.proposals == n
    assert len(store.read_detections(tmp_path / "v1.detections.h5")["scores"]) == s.detections
