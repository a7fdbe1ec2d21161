"""`make paper-sep3d` end to end on real DAVIS 2016 frames and masks (../shared/refdata,
two sequences cut to a few frames), with R(2+1)D-18 weights made from the public layout
(tests/data/reference, random values) and a one-step training: every step's output is
checked, and a partial copy of the set is refused by check-dataset before any work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT

SEQS = ("blackswan", "breakdance")
FRAMES = 10


def _davis(refdata: Path, root: Path) -> Path:
    for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        for seq in SEQS:
            src = refdata / "davis2016" / sub / "480p" / seq
            dst = root / sub / "480p" / seq
            dst.mkdir(parents=True)
            for f in sorted(src.glob(f"*.{ext}"))[:FRAMES]:
                shutil.copy(f, dst / f.name)
    return root


def _r2p1d(path: Path) -> Path:
    import torch

    layout = json.loads((DATA / "reference" / "torchvision_r2plus1d_18.json").read_text())
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in layout["state_dict"].items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(0)
        elif k.endswith("running_var"):  # a variance: positive, or eval-mode BN gives NaN
            sd[k] = 0.5 + torch.rand(shape, generator=g)
        else:
            sd[k] = 0.01 * torch.randn(shape, generator=g)
    torch.save(sd, path)
    return path


def _make(target: str, out: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["make", "--no-print-directory", "-C", str(ROOT), target, f"PAPERS_PY={sys.executable}",
            f"PAPERS_OUT={out}", *[f"{k}={v}" for k, v in variables.items()]]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)


SMALL_RUN = {"SEP3D_TRAIN_OPTS": "--max-steps 1 --epochs 1 --crop 64 --short-side 64 --clip-len 8 "
                                 "--batch-size 1 --val-videos 1 --device cpu",
             "SEP3D_FRAMES_OPTS": "--short-side 64",
             "SEP3D_SEG_OPTS": "--device cpu"}


@pytest.fixture(scope="module")
def chain(refdata, tmp_path_factory):
    if shutil.which("make") is None:
        pytest.skip("GNU make not installed")
    tmp = tmp_path_factory.mktemp("sep3d")
    davis = _davis(refdata, tmp / "davis")
    weights = _r2p1d(tmp / "r2plus1d_18.pth")
    out = tmp / "runs"
    res = _make("paper-sep3d", out, DAVIS=str(davis), R2P1D=str(weights), **SMALL_RUN)
    return res, out / "sep3d", davis, weights


def test_every_step_writes_its_output(chain):
    from vidseg_cli import store

    res, w, davis, _ = chain
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (w / ".done" / "dataset").is_file()
    cfg = json.loads((w / "run" / "config.json").read_text())
    assert cfg["command"]["params"]["recipe"] == "paper"
    assert cfg["command"]["params"]["init"].endswith("r2plus1d_18.pth")
    assert (w / "run" / "best.ckpt").is_file() and (w / "run" / "log.jsonl").is_file()
    for seq in SEQS:
        with store.open_record(w / "frames" / f"{seq}.frames.h5", "frames") as r:
            assert r.arrays["frames"].shape[:3] == (FRAMES, 64, 114)
        with store.open_record(w / "scores" / f"{seq}.scores.h5", "scores") as r:
            assert r.arrays["probs"].shape[:2] == (FRAMES, 2)
    ev = json.loads((w / "eval.json").read_text())
    assert set(ev["per_sequence"]) == set(SEQS)
    for m in ("J", "F"):
        assert 0.0 <= ev[m]["mean"] <= 1.0
    table = json.loads((w / "results.json").read_text())
    rows = {r["figure"]: r for r in table["rows"]}
    assert rows["J mean"]["paper"] == 78.3
    assert rows["J mean"]["ours"] == pytest.approx(100 * ev["J"]["mean"], abs=0.05)
    assert "| J mean |" in (w / "results.md").read_text()
    assert (w / "report" / "index.html").stat().st_size > 0
    assert "J mean" in res.stdout  # the table is printed


def test_rerun_does_nothing(chain):
    res, w, davis, weights = chain
    again = _make("paper-sep3d", w.parent, DAVIS=str(davis), R2P1D=str(weights), **SMALL_RUN)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "step.py" not in again.stdout  # Make found every step up to date


def test_partial_copy_refused_before_any_work(chain, tmp_path):
    _, _, davis, weights = chain
    part = tmp_path / "davis"
    shutil.copytree(davis, part)
    shutil.rmtree(part / "JPEGImages" / "480p" / SEQS[1])
    res = _make("paper-sep3d", tmp_path / "runs", DAVIS=str(part), R2P1D=str(weights), **SMALL_RUN)
    assert res.returncode == 2
    assert f"{part}/JPEGImages/480p/{SEQS[1]}: missing" in res.stderr
    assert sorted(p.name for p in (tmp_path / "runs").rglob("*")) == []


def test_missing_dataset_and_weights_say_where_to_get_them(tmp_path):
    res = _make("paper-sep3d", tmp_path / "runs")
    assert res.returncode == 2
    assert "DAVIS=PATH is missing" in res.stderr
    res = _make("paper-sep3d", tmp_path / "runs", DAVIS=str(tmp_path))
    assert "R2P1D=PATH is missing" in res.stderr and "r2plus1d_18-91a641e6.pth" in res.stderr
    assert not (tmp_path / "runs").exists()
