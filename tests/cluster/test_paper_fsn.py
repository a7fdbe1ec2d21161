"""`make paper-fsn SMALL=1 SLURM=1` against the session's local SLURM (conftest.py), as
`make check` runs it: every step goes through `vidseg submit` (the frames and features as
job arrays, the features following the frames task by task, the trainings after their
inputs, evaluation after-any), the table comes out, and a second `make` submits nothing.
The recipe is shortened (smaller set, a few training steps) to fit the check's 5 minutes,
so the figures' ranges, which belong to the full SMALL recipe, are printed, not checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SHORT = {"FSN_SYNTH_OPTS": "--train 6 --test 3 --duration 8,10",
         "FSN_BACKBONE": "--stream flow --flow farneback --width 0.25 --epochs 1 "
                         "--steps-per-epoch 5 --batch-size 8 --seed 0",
         "FSN_TEMPORAL": "--lr 0.01 --epochs 1 --steps-per-epoch 5 --seed 0",
         "RANGES": "0"}


def _make(out, slurm_env) -> subprocess.CompletedProcess:
    env = {**os.environ, **slurm_env, "PYTHONPATH": str(ROOT)}
    args = ["make", "--no-print-directory", "-C", str(ROOT), "paper-fsn", "SMALL=1", "SLURM=1",
            f"PAPERS_PY={sys.executable}", f"PAPERS_OUT={out}",
            *[f"{k}={v}" for k, v in SHORT.items()]]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def test_paper_fsn_small_through_slurm(slurm_cluster, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("GNU make not installed")
    out = tmp_path / "runs"
    res = _make(out, slurm_cluster.env)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    w = out / "fsn-small"
    subs = w / "slurm"
    stages = {}
    for f in subs.glob("*/submit.json"):
        rec = json.loads(f.read_text())
        stages[f.parent.name.split("-")[0]] = rec
        assert rec["backend"] == "slurm" and all(j["job_id"].isdigit() for j in rec["jobs"])
    assert set(stages) == {"frames", "backbone", "features", "fsn", "localize", "eval"}
    assert "--follow" in stages["features"]["argv"]
    # --after / --after-any are not in the record (SLURM may find the upstream complete and
    # need no dependency): read them in the submit commands step.py printed.
    submits = [line for line in res.stdout.splitlines() if line.startswith("+ ") and " submit " in line]
    frames = str(next(subs.glob("frames-*")))
    assert any(f"--after {frames} --wait train backbone" in line for line in submits), submits
    localize = str(next(subs.glob("localize-*")))
    assert sum(f"--after-any {localize} --wait evaluate" in line for line in submits) == 2
    assert len(stages["frames"]["items"]) == 9 and stages["frames"]["scope"] == "video"
    assert len(list((w / "localize").glob("*.detections.h5"))) == 3
    rows = json.loads((w / "results.json").read_text())["rows"]
    assert {r["figure"] for r in rows} >= {"mAP@0.5", "frame-level mAP"}
    assert all(r["ours"] is not None and r["check"] == "not checked" for r in rows)
    assert (w / "report" / "index.html").is_file()

    folders = sorted(subs.glob("*-*"))
    again = _make(out, slurm_cluster.env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing submitted" in again.stderr
    assert sorted(subs.glob("*-*")) == folders  # submit's skip-existing: no new submission
