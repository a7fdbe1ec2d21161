"""`vidseg localize --method scnn`: background dropped, window-length frequencies, class-aware
NMS, against brute force; frames through provenance (missing, changed) or --frames; bad
checkpoints."""

from __future__ import annotations

import numpy as np
import torch

from tests.api.test_propose import brute_force_probs, tiny_network, write_frames
from vidseg_cli import store
from vidseg_cli.stages.nms import nms_per_class
from vidseg_cli.stages.windows import multiscale_windows

torch.set_num_threads(1)
CLASSES = ["background", "a", "b"]
FREQ = [[0, 0, 0], [0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]  # (K+1) x lengths 16, 32, 64


def _setup(cli, tmp_path, t=80):
    frames = write_frames(tmp_path / "v1.frames.h5", t)
    model = tiny_network(tmp_path / "loc.ckpt", "localization", CLASSES, seed=3,
                         window_lengths=[16, 32, 64], window_frequency=FREQ)
    # Shift the background logit so that about half of the windows are background.
    logp = np.log(brute_force_probs(model, frames, multiscale_windows(t, (16, 32, 64))))
    with torch.no_grad():
        model.fc8.bias[0] -= float(np.median(logp[:, 0] - logp[:, 1:].max(1)))
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    save_checkpoint(tmp_path / "loc.ckpt", model, CLASSES)
    r = cli("propose", tmp_path / "v1.frames.h5", "--method", "sliding", "--lengths", "16,32,64",
            "-o", tmp_path / "v1.proposals.h5", "-q")
    assert r.exit_code == 0, r.stderr
    return frames, model


def test_detections_against_brute_force(cli, tmp_path):
    frames, model = _setup(cli, tmp_path)
    r = cli("localize", tmp_path / "v1.proposals.h5", "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
            "--nms-iou", "0.3", "-o", tmp_path / "v1.detections.h5", "-q")
    assert r.exit_code == 0, r.stderr
    det = store.read_detections(tmp_path / "v1.detections.h5")
    win = multiscale_windows(80, (16, 32, 64))
    probs = brute_force_probs(model, frames, win)
    lab = probs.argmax(1)
    fg = lab > 0
    assert 0 < fg.sum() < len(fg)  # the test sees both kinds
    col = {16: 0, 32: 1, 64: 2}
    score = np.array([probs[i, k] * FREQ[k][col[int(e - s)]] for i, ((s, e), k) in enumerate(zip(win, lab))])
    seg, lab, score = win[fg].astype(float), lab[fg], score[fg]
    keep = nms_per_class(seg, lab, score, 0.3)
    np.testing.assert_array_equal(det["segments"], seg[keep])
    np.testing.assert_array_equal(det["labels"], lab[keep])
    np.testing.assert_allclose(det["scores"], score[keep], rtol=1e-5)
    assert det.class_names == CLASSES and det.num_frames == 80
    # --top-k caps the count, highest scores first.
    r = cli("localize", tmp_path / "v1.proposals.h5", "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
            "--nms-iou", "0.3", "--top-k", "2", "-o", tmp_path / "top.h5", "-q")
    assert r.exit_code == 0
    np.testing.assert_array_equal(store.read_detections(tmp_path / "top.h5")["segments"], seg[keep][:2])


def test_frames_missing_changed_or_given(cli, tmp_path):
    _setup(cli, tmp_path)
    prop, ckpt = tmp_path / "v1.proposals.h5", tmp_path / "loc.ckpt"
    # Rewritten frames file: another uid.
    write_frames(tmp_path / "v1.frames.h5", 80, seed=1)
    r = cli("localize", prop, "--method", "scnn", "--weights", ckpt, "-o", tmp_path / "d.h5")
    assert r.exit_code == 2
    assert r.stderr.startswith(f"vidseg localize: error: {prop}: its frames file ")
    assert "has changed since the proposals were made" in r.stderr
    # An explicit --frames (file or folder) is used as given.
    r = cli("localize", prop, "--method", "scnn", "--weights", ckpt, "--frames", tmp_path, "-o",
            tmp_path / "d.h5", "-q")
    assert r.exit_code == 0, r.stderr
    # Missing frames file.
    (tmp_path / "v1.frames.h5").unlink()
    r = cli("localize", prop, "--method", "scnn", "--weights", ckpt, "-o", tmp_path / "d2.h5")
    assert r.exit_code == 2 and "is missing; give --frames" in r.stderr
    assert not (tmp_path / "d2.h5").exists()
    # A frames file of another length.
    write_frames(tmp_path / "other.frames.h5", 50)
    r = cli("localize", prop, "--method", "scnn", "--weights", ckpt, "--frames", tmp_path / "other.frames.h5",
            "-o", tmp_path / "d3.h5")
    assert r.exit_code == 2 and "50 frames, but the proposals file" in r.stderr


def test_wrong_stage_or_classes(cli, tmp_path):
    _setup(cli, tmp_path)
    tiny_network(tmp_path / "pro.ckpt", "proposal", ["background", "action"])
    r = cli("localize", tmp_path / "v1.proposals.h5", "--method", "scnn", "--weights", tmp_path / "pro.ckpt",
            "-o", tmp_path / "d.h5")
    assert r.exit_code == 2
    assert "checkpoint is the S-CNN proposal network; this needs the localization or classification" in r.stderr
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import read_checkpoint, save_checkpoint

    ck = read_checkpoint(tmp_path / "loc.ckpt")
    m = MODELS.build("scnn", **ck["config"])
    save_checkpoint(tmp_path / "nobg.ckpt", m, ["a", "b", "c"])
    r = cli("localize", tmp_path / "v1.proposals.h5", "--method", "scnn", "--weights", tmp_path / "nobg.ckpt",
            "-o", tmp_path / "d.h5")
    assert r.exit_code == 2 and "classes must start with 'background'" in r.stderr
    # A features file is not a proposals file.
    r = cli("localize", tmp_path / "v1.frames.h5", "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
            "-o", tmp_path / "d.h5")
    assert r.exit_code == 2 and "expected a proposals file, found a frames file" in r.stderr


@np.errstate(invalid="ignore")
def test_a_non_finite_proposal_is_refused(cli, tmp_path):
    _setup(cli, tmp_path)
    prop = store.read_proposals(tmp_path / "v1.proposals.h5")
    for name, column in (("score", None), ("segment", 1)):
        segs, scores = prop["segments"].copy(), prop["scores"].copy()
        if column is None:
            scores[2] = np.nan
        else:
            segs[2, column] = np.nan
        bad = tmp_path / f"bad_{name}.proposals.h5"
        store.write_proposals(bad, segs, scores, video_id="v1", num_frames=80, fps=prop.fps,
                              inputs=[tmp_path / "v1.frames.h5"])
        r = cli("localize", bad, "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
                "-o", tmp_path / f"{name}.detections.h5")
        assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"vidseg localize: error: {bad}: proposal 2 has a non-finite {name}")
        assert not (tmp_path / f"{name}.detections.h5").exists()


def test_folders_in_give_the_same_files_as_files_in(cli, tmp_path):
    """propose and localize take a folder of inputs, as every per-video stage does (the
    paper targets pass folders)."""
    _setup(cli, tmp_path)
    (tmp_path / "frames").mkdir()
    (tmp_path / "v1.frames.h5").rename(tmp_path / "frames" / "v1.frames.h5")
    r = cli("propose", tmp_path / "frames", "--method", "sliding", "--lengths", "16,32,64",
            "-o", tmp_path / "props", "-q")
    assert r.exit_code == 0, r.stderr
    got = store.read_proposals(tmp_path / "props" / "v1.proposals.h5")
    want = store.read_proposals(tmp_path / "v1.proposals.h5")
    np.testing.assert_array_equal(got["segments"], want["segments"])
    r = cli("localize", tmp_path / "props", "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
            "--frames", tmp_path / "frames", "-o", tmp_path / "dets", "-q")
    assert r.exit_code == 0, r.stderr
    assert store.read_detections(tmp_path / "dets" / "v1.detections.h5").num_frames == 80
    r = cli("localize", tmp_path / "frames", "--method", "scnn", "--weights", tmp_path / "loc.ckpt",
            "-o", tmp_path / "x", "-q")
    assert r.exit_code == 2 and "no proposals files in this folder" in r.stderr
