"""`vidseg predict` on the bundled real videos with the bundled sample weights: each
pipeline's files, the printed detections, the same files as the stages run one by one,
reruns, and bad roles refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import SAMPLE
from vidseg_cli import store

W = SAMPLE / "weights"
SMALL = ("--short-side", "64", "--fps", "10")  # 41 frames of carphone, 100 of bikes

FSN = ("--pipeline", "fsn", "--weights", f"backbone={W / 'backbone_synth.ckpt'}",
       "--weights", f"fsn={W / 'fsn_synth.ckpt'}")


def _kinds(folder) -> dict[str, str]:
    return {p.name: store.peek_kind(p) for p in sorted(folder.glob("*.h5"))}


def _table_rows(stdout: str) -> list[tuple[float, float, str, float]]:
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0][0].isdigit():
            rows.append((float(parts[0]), float(parts[1]), parts[2], float(parts[3])))
    return rows


def test_fsn_writes_the_stages_files_and_prints_the_detections_in_seconds(cli, carphone, tmp_path):
    out = tmp_path / "out"
    res = cli("predict", carphone, *FSN, "-o", out, *SMALL, "--show", "100", "--json", tmp_path / "s.json")
    assert res.exit_code == 0, res.output
    vid = "carphone_pristine"
    assert _kinds(out) == {f"{vid}.detections.h5": "detections", f"{vid}.features.h5": "features",
                           f"{vid}.frame_scores.h5": "frame_scores", f"{vid}.frames.h5": "frames"}
    summary = json.loads((tmp_path / "s.json").read_text())["results"][0]
    assert [s["stage"] for s in summary["stages"]] == ["extract-frames", "extract-features", "localize"]
    det = store.read_detections(out / f"{vid}.detections.h5")
    assert len(det["scores"]) == len(summary["detections"]) > 0
    # the table: seconds = frames / 10 fps (timestamps of a 10 fps resampling), best first
    rows = _table_rows(res.stdout)
    order = np.argsort(-det["scores"], kind="stable")
    assert [r[2] for r in rows] == [det.class_names[k] for k in det["labels"][order]]
    np.testing.assert_allclose([r[:2] for r in rows], det["segments"][order] / 10.0, atol=0.006)
    assert f"{vid} (fsn): {len(rows)} detections (start and end in seconds)" in res.stdout

    # the same video through the stage commands one by one: the same detections
    one = tmp_path / "one"
    frames, feats, dets = (one / f"{vid}.{k}.h5" for k in ("frames", "features", "detections"))
    assert cli("extract-frames", carphone, "-o", frames, *SMALL, "-q").exit_code == 0
    assert cli("extract-features", frames, "--weights", W / "backbone_synth.ckpt", "-o", feats,
               "-q").exit_code == 0
    assert cli("localize", feats, "--method", "fsn", "--weights", W / "fsn_synth.ckpt", "-o", dets,
               "-q").exit_code == 0
    ref = store.read_detections(dets)
    for key in ("segments", "labels", "scores"):
        np.testing.assert_array_equal(ref[key], det[key])
    np.testing.assert_array_equal(store.read_features(feats)["features"],
                                  store.read_features(out / f"{vid}.features.h5")["features"])
    # provenance: each file names the one it was made from, in the predict folder
    assert det.attrs["inputs"][0]["path"] == str(out / f"{vid}.features.h5")


def test_a_rerun_skips_a_done_video_and_still_prints_it_and_overwrite_redoes_it(cli, carphone, tmp_path):
    out = tmp_path / "out"
    first = cli("predict", carphone, *FSN, "-o", out, *SMALL)
    assert first.exit_code == 0, first.output
    uid = store.read_detections(out / "carphone_pristine.detections.h5").uid
    again = cli("predict", carphone, *FSN, "-o", out, *SMALL, "--json", tmp_path / "s.json")
    assert again.exit_code == 0 and "exists, skipped" in again.stderr
    assert _table_rows(again.stdout) == _table_rows(first.stdout)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["results"][0]["skipped"] is True and doc["results"][0]["detections"]
    assert store.read_detections(out / "carphone_pristine.detections.h5").uid == uid
    redo = cli("predict", carphone, *FSN, "-o", out, *SMALL, "--overwrite", "-q")
    assert redo.exit_code == 0 and _table_rows(redo.stdout) == _table_rows(first.stdout)
    assert store.read_detections(out / "carphone_pristine.detections.h5").uid != uid


def test_scnn_on_the_real_video(cli, bikes, tmp_path):
    res = cli("predict", bikes, "--pipeline", "scnn", "--weights",
              f"proposal={W / 'scnn_proposal_synth.ckpt'}", "--weights",
              f"localization={W / 'scnn_localization_synth.ckpt'}", "-o", tmp_path, *SMALL, "-q")
    assert res.exit_code == 0, res.output
    assert _kinds(tmp_path) == {"bikes.detections.h5": "detections", "bikes.frames.h5": "frames",
                                "bikes.proposals.h5": "proposals"}
    det = store.read_detections(tmp_path / "bikes.detections.h5")
    assert det.attrs["method"] == "scnn" and len(_table_rows(res.stdout)) == min(10, len(det["scores"]))


def test_3dfcn_runs_the_hmm_belief_then_the_crf(cli, carphone, tmp_path):
    hmm = tmp_path / "hmm.h5"  # background and foreground, each state sticky
    store.write_hmm(hmm, [0.8, 0.2], [[0.95, 0.05], [0.1, 0.9]], ["background", "foreground"])
    out = tmp_path / "out"
    res = cli("predict", carphone, "--pipeline", "3dfcn", "--weights", f"model={W / '3dfcn8s_synth.ckpt'}",
              "--weights", f"hmm={hmm}", "-o", out, *SMALL, "-q")
    assert res.exit_code == 0, res.output
    v = "carphone_pristine"
    assert _kinds(out) == {f"{v}.frames.h5": "frames", f"{v}.scores.h5": "scores",
                           f"{v}.smoothed.scores.h5": "scores", f"{v}.labels.h5": "labels"}
    smoothed = store.read_scores(out / f"{v}.smoothed.scores.h5")
    assert smoothed.attrs["postprocess"] == "hmm-smooth"
    labels = store.read_labels(out / f"{v}.labels.h5")
    assert labels.attrs["inputs"][0]["path"] == str(out / f"{v}.smoothed.scores.h5")
    assert labels["labels"].shape == (41, 64, 78)
    assert f"{v} (3dfcn): 41 frames, " in res.stdout and "pixels: background" in res.stdout


def test_sep3d_prints_the_pixels_per_class(cli, bikes, tmp_path):
    res = cli("predict", bikes, "--pipeline", "sep3d", "--weights", f"model={W / 'sep3d_synth.ckpt'}",
              "-o", tmp_path, *SMALL, "-q", "--json", tmp_path / "s.json")
    assert res.exit_code == 0, res.output
    px = json.loads((tmp_path / "s.json").read_text())["results"][0]["pixels"]
    assert px["frames"] == 100 and set(px["class_shares"]) == {"background", "foreground"}
    assert abs(sum(px["class_shares"].values()) - 1) < 1e-3
    assert f"bikes (sep3d): 100 frames, {px['action_frames']} with action pixels" in res.stdout


@pytest.fixture(scope="module")
def tube_weights(tmp_path_factory):
    """A small Segment-tube checkpoint (random trunk) whose heads call every clip 'jump'."""
    from tests.api.test_segment_tube import CLASSES, tiny_trunk
    from vidseg_cli.models.segment_tube import SegmentTubeNet, make_segment_tube_checkpoint

    folder = tmp_path_factory.mktemp("tube")
    trunk = tiny_trunk(folder / "scnn.ckpt")
    heads = SegmentTubeNet(num_classes=len(CLASSES), in_features=trunk.feature_dim, hidden=8)
    with torch.no_grad():
        heads.proposal.fc.bias.copy_(torch.tensor([-10.0, 10.0]))
        heads.classification.fc.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    make_segment_tube_checkpoint(folder / "scnn.ckpt", heads, CLASSES, folder / "st.ckpt")
    return folder / "st.ckpt"


def test_segment_tube_writes_labels_detections_and_frame_scores(cli, carphone, tube_weights, tmp_path):
    res = cli("predict", carphone, "--pipeline", "segment-tube", "--weights", f"model={tube_weights}",
              "-o", tmp_path, *SMALL, "-q")
    assert res.exit_code == 0, res.output
    v = "carphone_pristine"
    assert _kinds(tmp_path) == {f"{v}.detections.h5": "detections", f"{v}.frames.h5": "frames",
                                f"{v}.labels.h5": "labels", f"{v}.frame_scores.h5": "frame_scores"}
    rows = _table_rows(res.stdout)
    assert rows and {r[2] for r in rows} == {"jump"}  # every clip called 'jump'
    assert f"{v} (segment-tube): 41 frames" in res.stdout  # its masks, too


@pytest.mark.skipif(not (W / "segment_tube_synth.ckpt").exists(),
                    reason="sample_data/weights/segment_tube_synth.ckpt not built (make sample-weights)")
def test_segment_tube_with_the_sample_weights(cli, bikes, tmp_path):
    res = cli("predict", bikes, "--pipeline", "segment-tube", "--weights",
              f"model={W / 'segment_tube_synth.ckpt'}", "-o", tmp_path, *SMALL, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "bikes.labels.h5").exists() and "bikes (segment-tube)" in res.stdout


@pytest.mark.parametrize("args, text", [
    (("--pipeline", "i3d"), "unknown pipeline 'i3d' (known: 3dfcn, fsn, scnn, segment-tube, sep3d, "
                            "wfsn; docs/predict.md)"),
    (("--pipeline", "fsn", "--weights", f"backbone={W / 'backbone_synth.ckpt'}"),
     "the fsn pipeline needs --weights fsn=PATH"),
    (("--pipeline", "sep3d", "--weights", "model=no/such.ckpt"),
     "no/such.ckpt: no such weights file (--weights model=; a Sep3D checkpoint"),
    (("--pipeline", "sep3d", "--weights", f"modle={W / 'sep3d_synth.ckpt'}"),
     "the sep3d pipeline has no role 'modle' (its roles: model"),
    (("--pipeline", "sep3d", "--weights", str(W / "sep3d_synth.ckpt")), "expected ROLE=PATH"),
    (("--pipeline", "fsn", "--weights", f"backbone={W / 'fsn_synth.ckpt'}",
      "--weights", f"fsn={W / 'fsn_synth.ckpt'}"), "checkpoint is for model 'fsn'"),
])
def test_bad_roles_are_one_line_exit_2_before_any_work(cli, carphone, tmp_path, args, text):
    out = tmp_path / "out"
    res = cli("predict", carphone, *args, "-o", out)
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("vidseg predict: error: ")
    assert text in res.stderr
    assert not out.exists()


def test_a_bad_video_fails_alone(cli, carphone, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    res = cli("predict", bad, carphone, "--pipeline", "sep3d", "--weights",
              f"model={W / 'sep3d_synth.ckpt'}", "-o", tmp_path / "out", *SMALL, "-q")
    assert res.exit_code == 1, res.output
    assert f"vidseg predict: error: {bad}: " in res.stderr
    assert "carphone_pristine (sep3d): 41 frames" in res.stdout
    assert not list((tmp_path / "out").glob("broken*"))


def test_help_lists_every_pipeline_with_its_roles_and_post_processing(cli):
    res = cli("predict", "--help")
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    for words in ("fsn: FSN", "backbone=PATH", "fsn=PATH", "scnn: S-CNN", "proposal=PATH",
                  "localization=PATH", "3dfcn: 3DFCN", "model=PATH", "hmm=PATH (optional)",
                  "crf-refine", "sep3d: Sep3D", "segment-tube: Segment-tube", "wfsn=PATH"):
        assert words in text, words
    assert text.count("post-processing:") == 6
