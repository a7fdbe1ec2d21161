"""`vidseg train scnn`: a shortened learning check (train, localize, evaluate: the mAP beats
random windows), the stage and classes recorded, and the bad inputs of --init."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidseg_cli import store

torch.set_num_threads(1)

TINY = ["--recipe", "synthetic", "--width", "0.0625", "--batch-size", "8", "--threads", "1",
        "--device", "cpu", "--optimizer", "adam", "--lr", "2e-3", "--fc8-lr", "2e-3", "-q"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    d = tmp_path_factory.mktemp("scnn") / "synth"
    r = CliRunner().invoke(cli, ["synth", "-o", str(d), "--seed", "3", "--num-classes", "2", "--train", "10",
                                 "--test", "4", "--size", "64x48", "-q"])
    assert r.exit_code == 0, r.output
    return d


def _random_windows_map(det_dir, gt, classes, tmp, seeds=5):
    from vidseg_cli.stages.windows import multiscale_windows

    maps = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        out = tmp / f"random{seed}"
        out.mkdir()
        for p in sorted(det_dir.glob("*.detections.h5")):
            rec = store.read_detections(p)
            win = multiscale_windows(rec.num_frames)
            n = max(len(rec["scores"]), 1)
            pick = rng.choice(len(win), min(n, len(win)), replace=False)
            store.write_detections(out / p.name, win[pick].astype(float), rng.integers(1, len(classes), len(pick)),
                                   rng.random(len(pick)), class_names=classes, video_id=rec.video_id,
                                   num_frames=rec.num_frames, fps=rec.fps)
        maps.append(_map(out, gt))
    return float(np.mean(maps))


def _map(det_dir, gt):
    from click.testing import CliRunner

    from vidseg_cli.cli.main import cli

    r = CliRunner().invoke(cli, ["evaluate", *map(str, sorted(det_dir.glob("*.h5"))), "--gt", str(gt),
                                 "--subset", "testing", "--tiou", "0.5", "--json", "-"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["mAP"]["0.5"]


def test_shortened_learning_check_beats_random_windows(cli, synth, tmp_path):
    cache = tmp_path / "cache"
    common = ["--data", synth, "--cache", cache, "--frame-size", "64x48", "--crop", "48x64", *TINY]
    r = cli("train", "scnn", "--stage", "classification", "-o", tmp_path / "cls", "--iterations", "90", *common)
    assert r.exit_code == 0, r.stderr
    r = cli("train", "scnn", "--stage", "localization", "-o", tmp_path / "loc", "--iterations", "20",
            "--init", tmp_path / "cls" / "best.ckpt", *common)
    assert r.exit_code == 0, r.stderr
    cfg = torch.load(tmp_path / "loc" / "best.ckpt", weights_only=True)["config"]
    assert cfg["stage"] == "localization" and list(cfg["crop_size"]) == [48, 64]
    assert len(cfg["window_frequency"]) == 3  # background + 2 classes
    # extract-frames -> propose (sliding, S-CNN w/o proposal) -> localize -> evaluate
    vids = sorted((synth / "videos").glob("synth_test_*.mp4"))
    assert cli("extract-frames", *vids, "-o", tmp_path / "frames", "-q").exit_code == 0
    frames = sorted((tmp_path / "frames").glob("*.h5"))
    assert cli("propose", *frames, "--method", "sliding", "-o", tmp_path / "prop", "-q").exit_code == 0
    r = cli("localize", *sorted((tmp_path / "prop").glob("*.h5")), "--method", "scnn", "--weights",
            tmp_path / "loc" / "best.ckpt", "-o", tmp_path / "det", "-q")
    assert r.exit_code == 0, r.stderr
    got = _map(tmp_path / "det", synth)
    classes = store.read_detections(next((tmp_path / "det").glob("*.h5"))).class_names
    rand = _random_windows_map(tmp_path / "det", synth, classes, tmp_path)
    print(f"mAP@0.5 {got:.3f}, random windows {rand:.3f}")
    assert got > rand + 0.05, (got, rand)


def test_proposal_stage_and_init_checks(cli, synth, tmp_path):
    common = ["--data", synth, "--cache", tmp_path / "cache", "--frame-size", "32x24", "--crop", "24x32",
              "--val-fraction", "0", *TINY]
    r = cli("train", "scnn", "--stage", "proposal", "-o", tmp_path / "pro", "--iterations", "3", *common)
    assert r.exit_code == 0, r.stderr
    ck = torch.load(tmp_path / "pro" / "last.ckpt", weights_only=True)
    assert ck["config"]["stage"] == "proposal" and ck["classes"] == ["background", "action"]
    assert ck["config"]["window_frequency"] is None
    # The localization network starts from a classification network, not a proposal one.
    r = cli("train", "scnn", "--stage", "localization", "-o", tmp_path / "loc", "--iterations", "1",
            "--init", tmp_path / "pro" / "last.ckpt", *common)
    assert r.exit_code == 2
    assert "checkpoint is the S-CNN proposal network; this needs the classification network" in r.stderr
    # ... of the same classes.
    from vidseg_cli.models import MODELS
    from vidseg_cli.models.checkpoint.format import save_checkpoint

    m = MODELS.build("scnn", stage="classification", num_classes=4, width=0.0625, frame_size=[32, 24],
                     crop_size=[24, 32])
    save_checkpoint(tmp_path / "cls3.ckpt", m, ["background", "x", "y", "z"])
    r = cli("train", "scnn", "--stage", "localization", "-o", tmp_path / "loc", "--iterations", "1",
            "--init", tmp_path / "cls3.ckpt", *common)
    assert r.exit_code == 2 and "checkpoint classes differ" in r.stderr
    # A missing dataset is one line.
    r = cli("train", "scnn", "--stage", "proposal", "--data", tmp_path / "nope", "-o", tmp_path / "x")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"vidseg train: error: {tmp_path / 'nope'}: no such dataset folder"
