"""`vidseg train segment-tube`: the synthetic recipe writes a run (trunk and heads in one
checkpoint, fc7 cached), resumes exactly, the paper recipe runs as a smoke, and a bad
--init is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidseg_cli.datasets.segment_tube_data import (
    class_weights,
    mask_frames,
    random_chunks,
)

torch.set_num_threads(1)

TINY = ["--hidden", "8", "--superpixels", "50", "--threads", "1", "--device", "cpu", "--val-fraction",
        "0.2", "-q"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    d = tmp_path_factory.mktemp("segment_tube")
    r = CliRunner().invoke(cli, ["synth", "-o", str(d / "synth"), "--seed", "3", "--num-classes", "2",
                                 "--train", "5", "--test", "1", "--size", "64x48", "-q"])
    assert r.exit_code == 0, r.output
    m = MODELS.build("scnn", stage="localization", num_classes=3, width=0.0625, frame_size=[32, 24],
                     crop_size=[24, 32], pixel_mean=110.0, pixel_scale=1 / 60)
    save_checkpoint(d / "scnn.ckpt", m, ["background", "a", "b"])
    return d


def _args(setup, run, *more):
    return ["train", "segment-tube", "--data", setup / "synth", "--init", setup / "scnn.ckpt", "-o", run,
            "--cache", setup / "frames", "--features", setup / "features", *TINY, *more]


def test_synthetic_recipe_writes_the_run_and_resumes_exactly(cli, setup, tmp_path):
    r = cli(*_args(setup, tmp_path / "straight", "--epochs", "3"), "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.stderr
    run = tmp_path / "straight"
    for name in ("last.ckpt", "best.ckpt", "log.jsonl", "config.json", "summary.json"):
        assert (run / name).is_file(), name
    assert len(list((setup / "features").glob("*.npz"))) == 5  # fc7 of every training video
    with np.load(next((setup / "features").glob("*.npz"))) as z:
        assert sorted(z.files) == ["fc7_16", "fc7_32"] and z["fc7_16"].dtype == np.float16
    ck = torch.load(run / "best.ckpt", weights_only=True)
    assert ck["model"] == "segment_tube" and ck["classes"][0] == "background"
    assert ck["config"]["trunk"]["model"] == "scnn" and ck["config"]["trunk"]["config"]["width"] == 0.0625
    assert ck["config"]["hidden"] == 8 and ck["config"]["window_lengths"] == [16, 32]
    assert any(k.startswith("trunk.conv1") for k in ck["state_dict"])
    assert any(k.startswith("proposal.lstm") for k in ck["state_dict"])
    assert any(k.startswith("classification.fc") for k in ck["state_dict"])
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in log] == [1, 2, 3] and "mean_class_accuracy" in log[0]["val"]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["data"]["features_computed"] + summary["data"]["features_cached"] == 5

    # Two epochs, then a resume to three: the same weights as the straight run.
    assert cli(*_args(setup, tmp_path / "split", "--epochs", "2")).exit_code == 0
    r = cli(*_args(setup, tmp_path / "split", "--epochs", "3", "--resume"))
    assert r.exit_code == 0, r.stderr
    a = torch.load(run / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "split" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_paper_recipe_smoke_fine_tunes_the_trunk(cli, setup, tmp_path):
    r = cli(*_args(setup, tmp_path / "paper", "--recipe", "paper", "--max-steps", "2", "--seq-len", "4"))
    assert r.exit_code == 0, r.stderr
    ck = torch.load(tmp_path / "paper" / "last.ckpt", weights_only=True)
    init = torch.load(setup / "scnn.ckpt", weights_only=True)["state_dict"]
    assert ck["config"]["trunk"]["fine_tuned"] is True
    assert not torch.equal(ck["state_dict"]["trunk.conv1.weight"], init["conv1.weight"])


@pytest.mark.parametrize("recipe", ["synthetic", "paper"])
def test_an_unmasked_share_of_one_trains_as_unmasked_clips(cli, setup, tmp_path, recipe):
    """Mask shift at share 1: every window's clip unmasked, so the same weights as a run on
    unmasked clips; at 0.5 the windows mix (a different run from either)."""
    more = ["--epochs", "2"] if recipe == "synthetic" else ["--recipe", "paper", "--max-steps", "2",
                                                            "--seq-len", "4"]
    runs = {}
    for name, opts in (("none", ["--clip-mask", "none"]), ("all", ["--unmasked-share", "1"]),
                       ("half", ["--unmasked-share", "0.5"]), ("soft", [])):
        r = cli(*_args(setup, tmp_path / name, *more, *opts))
        assert r.exit_code == 0, r.stderr
        runs[name] = torch.load(tmp_path / name / "last.ckpt", weights_only=True)["state_dict"]

    def same(a, b):
        return all(torch.equal(runs[a][k], runs[b][k]) for k in runs[a])

    assert same("none", "all")
    assert not same("half", "none") and not same("half", "soft") and not same("soft", "none")


def test_bad_init_is_one_line(cli, setup, tmp_path):
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    save_checkpoint(tmp_path / "st.ckpt", MODELS.build("segment_tube", num_classes=3, in_features=8),
                    ["background", "a", "b"])
    r = cli("train", "segment-tube", "--data", setup / "synth", "--init", tmp_path / "st.ckpt",
            "-o", tmp_path / "run")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"vidseg train: error: {tmp_path / 'st.ckpt'}: checkpoint is for model "
                                "'segment_tube', not 'scnn'")
    assert not (tmp_path / "run").exists()


def test_mask_chunks_and_weights():
    frames = np.full((1, 4, 4, 3), 200, np.uint8)
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, 0] = 1
    out = mask_frames(frames, masks, fill=100.0, keep=0.5)
    assert out[0, 1, 1, 0] == 200 and out[0, 3, 3, 0] == 150  # dilated by 1 px; outside blended
    assert (mask_frames(frames, masks, 100.0, keep=0.0)[0, 3, 3] == 100).all()  # hard
    chunks = random_chunks([70, 5], 32, np.random.default_rng(0))
    for seq, n in ((0, 70), (1, 5)):
        parts = sorted((a, b) for s, a, b in chunks if s == seq)
        assert parts[0][0] == 0 and parts[-1][1] == n and all(b - a <= 32 for a, b in parts)
        assert all(p[1] == q[0] for p, q in zip(parts, parts[1:]))
    w = class_weights([np.array([0, 0, 0, 1, -1])], 3)
    assert np.allclose(w, [2 / 3, 2.0, 1.0])


def test_a_trained_run_drives_the_segment_tube_command(cli, setup, tmp_path):
    """Training and inference agree on the checkpoint: the run's best.ckpt is what
    `vidseg segment-tube --weights` loads, and its outputs validate."""
    from vidseg_cli import store

    r = cli(*_args(setup, tmp_path / "run", "--epochs", "1"))
    assert r.exit_code == 0, r.stderr
    frames = tmp_path / "v.frames.h5"
    video = next((setup / "synth" / "videos").glob("*test*.mp4"))
    assert cli("extract-frames", video, "-o", frames, "-q").exit_code == 0
    out = tmp_path / "out" / "v.labels.h5"
    r = cli("segment-tube", frames, "--weights", tmp_path / "run" / "best.ckpt", "-o", out,
            "--superpixels", "50", "--rounds", "1", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    labels = store.read_labels(out)
    dets = store.read_detections(out.with_name("v.detections.h5"))
    classes = torch.load(tmp_path / "run" / "best.ckpt", weights_only=True)["classes"]
    assert labels.class_names == dets.class_names == classes and classes[0] == "background"
    assert labels["labels"].shape[0] == store.read_frames(frames).num_frames
