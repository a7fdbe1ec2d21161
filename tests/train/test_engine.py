"""The shared training loop: loss falls, checkpoints and logs appear, resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidseg_cli.models import MODELS
from vidseg_cli.models.checkpoint.format import build_from_checkpoint
from vidseg_cli.train.engine import Trainer, TrainSettings

CLASSES = ["background", "a", "b"]


def _data(seed=0):
    # Features whose mean says the class: learnable by the FSN temporal CNN.
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, (12, 8))  # videos x snippets
    x = rng.normal(0, 1, (12, 8, 6)) + np.eye(6)[y * 2] * 3  # B x N x D
    return torch.tensor(x, dtype=torch.float32), torch.tensor(np.repeat(y, 5, axis=1))  # labels per frame


def _run(run_dir, epochs, resume=False, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build("fsn", in_features=6, num_classes=3, hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)
    tr = Trainer(model, CLASSES, opt, run_dir, TrainSettings(epochs=epochs, seed=seed, quiet=True,
                 monitor="acc"), torch.device("cpu"), scheduler=sched)
    if resume:
        tr.resume(run_dir / "last.ckpt")
    x, y = _data()

    def batches(epoch):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        for i in range(0, len(x), 4):
            idx = order[i:i + 4]
            yield x[idx], y[idx]

    def loss_step(m, batch):
        xb, yb = batch
        return F.cross_entropy(m(xb), yb)

    def validate(m):
        return {"acc": float((m(x).argmax(1) == y).float().mean())}

    hist = tr.fit(batches, loss_step, validate, steps_per_epoch=3)
    return model, hist


def test_loss_falls_and_files_written(tmp_path):
    model, hist = _run(tmp_path, epochs=10)
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    assert hist[-1]["val"]["acc"] > 0.9
    for name in ("last.ckpt", "best.ckpt", "log.jsonl", "config.json"):
        assert (tmp_path / name).exists()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"] == "fsn" and cfg["classes"] == CLASSES and cfg["settings"]["epochs"] == 10
    loaded, ckpt = build_from_checkpoint(tmp_path / "last.ckpt", expect_model="fsn", expect_classes=CLASSES)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 10


def test_resume_is_exact(tmp_path):
    straight, _ = _run(tmp_path / "a", epochs=4)
    _run(tmp_path / "b", epochs=2)
    resumed, hist = _run(tmp_path / "b", epochs=4, resume=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    model = MODELS.build("fsn", in_features=6, num_classes=3, hidden=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tr = Trainer(model, CLASSES, opt, tmp_path, TrainSettings(epochs=1, quiet=True), torch.device("cpu"))
    with pytest.raises(FloatingPointError, match="loss became nan"):
        tr.fit(lambda e: [torch.zeros(1)], lambda m, b: torch.tensor(float("nan"), requires_grad=True))


@pytest.mark.parametrize("kill_at", [1, 2, 3])  # during the 1st, 2nd or 3rd write of epoch 3
def test_a_kill_between_the_epoch_writes_keeps_the_run_consistent(tmp_path, monkeypatch, kill_at):
    """Whatever write a kill interrupts, best.ckpt survives, the log never holds an epoch
    that last.ckpt lacks, and a resume ends where a straight run ends."""
    import vidseg_cli.train.engine as engine

    straight, _ = _run(tmp_path / "straight", epochs=4)
    run = tmp_path / "run"
    writes = {"n": 0}
    real_save, real_open = engine.save_checkpoint, open

    def counted(kind):
        def hit():
            if engine_epoch() == 3:
                writes["n"] += 1
                if writes["n"] == kill_at:
                    raise KeyboardInterrupt(kind)
        return hit

    state = {}

    def engine_epoch():
        return state["trainer"].epoch if "trainer" in state else 0

    def save(path, *a, **k):
        counted("ckpt")()
        return real_save(path, *a, **k)

    class Spy(engine.Trainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            state["trainer"] = self

    def logged_open(path, mode="r", *a, **k):
        if str(path).endswith("log.jsonl") and "a" in mode:
            counted("log")()
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(engine, "save_checkpoint", save)
    monkeypatch.setattr(engine, "Trainer", Spy)
    monkeypatch.setattr(engine, "open", logged_open, raising=False)
    import tests.train.test_engine as me
    monkeypatch.setattr(me, "Trainer", Spy)
    with pytest.raises(KeyboardInterrupt):
        _run(run, epochs=4)
    monkeypatch.undo()
    assert (run / "best.ckpt").exists()
    last_epoch = torch.load(run / "last.ckpt", weights_only=True)["train_state"]["epoch"]
    logged = [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert max(logged) <= last_epoch
    resumed, hist = _run(run, epochs=4, resume=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_resume_drops_a_torn_last_log_line(tmp_path):
    _run(tmp_path, epochs=2)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"epoch": 3, "lo')  # a kill mid-append
    _, hist = _run(tmp_path, epochs=3, resume=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


@pytest.mark.parametrize("unmeasured", [None, float("nan")])
def test_a_validation_with_nothing_to_measure_still_gives_a_best_checkpoint(tmp_path, unmeasured):
    torch.manual_seed(0)
    model = MODELS.build("fsn", in_features=6, num_classes=3, hidden=16)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    tr = Trainer(model, CLASSES, opt, tmp_path, TrainSettings(epochs=3, quiet=True, monitor="acc"),
                 torch.device("cpu"))
    x, y = _data()
    vals = iter([unmeasured, 0.5, unmeasured])
    tr.fit(lambda epoch: iter([(x[:4], y[:4])]), lambda m, b: F.cross_entropy(m(b[0]), b[1]),
           lambda m: {"acc": next(vals)}, steps_per_epoch=1)
    assert tr.best == 0.5  # the one measured epoch; the unmeasured ones neither win nor lose
    best = torch.load(tmp_path / "best.ckpt", weights_only=False)
    assert json.loads(json.dumps(best.get("training", {}), allow_nan=False))["epoch"] == 2
    assert all(json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines())
