"""`vidseg train ... --tensorboard DIR`: the event file holds the losses, learning rate and
validation metrics that log.jsonl records; without tensorboard installed, one line saying
what to install."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidseg_cli import store
from vidseg_cli.train import tensorboard as tb


def _set(tmp_path):
    rng = np.random.default_rng(0)
    feats, db = tmp_path / "feats", {}
    feats.mkdir()
    for k in range(6):
        vid, T = f"v{k}", 120
        y = np.zeros(T, int)
        y[30 + 5 * k:70 + 5 * k] = 1 + k % 2
        c = np.arange(0, T, 4) + 2
        f = np.eye(3)[y[c]] * 2 + rng.normal(0, 0.3, (len(c), 3))
        store.write_features(feats / f"{vid}.features.h5", f.astype(np.float32), c, video_id=vid,
                             num_frames=T, fps=10.0, attrs={"snippet": 4, "stride": 4})
        db[vid] = {"subset": "training" if k < 4 else "validation", "duration": 12.0, "fps": 10.0,
                   "annotations": [{"segment": [(30 + 5 * k) / 10, (70 + 5 * k) / 10],
                                    "label": "ab"[k % 2]}]}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": db, "taxonomy": ["a", "b"]}))
    return feats, gt


@pytest.mark.skipif(not tb.available(), reason="tensorboard is not installed (pip install tensorboard)")
def test_event_file_holds_the_logged_scalars(cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    feats, gt = _set(tmp_path)
    r = cli("train", "fsn", feats, "--gt", gt, "--val-subset", "validation", "--epochs", "2",
            "--steps-per-epoch", "5", "--hidden", "8", "--clip-snippets", "5", "--min-action-frames", "0",
            "-o", tmp_path / "run", "--tensorboard", tmp_path / "tb", "-q")
    assert r.exit_code == 0, r.output
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    val_keys = [k for k, v in log[0]["val"].items() if isinstance(v, (int, float))]
    assert val_keys and {"train/loss", "train/lr", "train/loss_step"} | {f"val/{k}" for k in val_keys} <= tags
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in log]
    np.testing.assert_allclose([e.value for e in loss], [r["loss"] for r in log], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("train/lr")], [r["lr"] for r in log], rtol=1e-6)
    k = val_keys[0]
    np.testing.assert_allclose([e.value for e in acc.Scalars(f"val/{k}")], [r["val"][k] for r in log],
                               rtol=1e-5)
    steps = acc.Scalars("train/loss_step")
    assert [e.step for e in steps] == list(range(1, log[-1]["step"] + 1))
    # the epoch's loss is the mean of its steps'
    assert np.mean([e.value for e in steps[:5]]) == pytest.approx(log[0]["loss"], rel=1e-5)


def test_without_tensorboard_one_line_says_what_to_install(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "available", lambda: False)
    feats, gt = _set(tmp_path)
    r = cli("train", "fsn", feats, "--gt", gt, "--epochs", "1", "-o", tmp_path / "run",
            "--tensorboard", tmp_path / "tb")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "the tensorboard package is not installed; pip install tensorboard" in r.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()
