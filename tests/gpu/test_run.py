"""benchmarks/gpu/run.sh --dry-run on the CPU: every step of the GPU run (install with
--no-deps, the CUDA tests, the figures, the learning check) at tiny sizes, and the
gpu.json it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"3dfcn-8s", "3dfcn-32s", "sep3d", "fcn_vs_sliding", "resnet50", "hmm_smooth"}


@pytest.mark.slow
def test_dry_run_writes_every_step_and_figure(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "VIDSEG_GPU_WORK": str(tmp_path / "work"),
           "VIDSEG_COMMIT": "0123abc"}
    env.pop("PYTHONPATH", None)  # run.sh puts its own install first
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu" / "run.sh"), str(out), "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=600)
    log = (out / "run.log").read_text() if (out / "run.log").exists() else ""
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:] + log[-4000:]
    rec = json.loads((out / "gpu.json").read_text())
    assert rec["commit"] == "0123abc" and rec["dry_run"] is True
    assert {s["step"]: s["rc"] for s in rec["steps"]} == {
        "install": 0, "cuda_tests": 0, "figures": 0, "learning": 0}, log[-4000:]
    assert (tmp_path / "work" / "site" / "vidseg_cli" / "__init__.py").exists()  # installed, --no-deps
    t = rec["cuda_tests"]
    # on a CPU every CUDA test skips but the registry check, which runs anywhere
    assert t["tests"] >= 20 and t["passed"] == 1 and t["failed"] == t["errors"] == 0
    assert t["skipped"] == t["tests"] - 1
    fig = rec["figures"]
    assert fig["tiny"] is True and not fig["errors"] and not fig["skipped"]
    assert set(fig["figures"]) == FIGURES
    for name in ("3dfcn-8s", "3dfcn-32s", "sep3d", "resnet50"):
        f = fig["figures"][name]
        assert f["float32"]["median_ms"] > 0 and f["bf16_autocast"]["median_ms"] > 0 and f["gflop"] > 0
    assert fig["figures"]["fcn_vs_sliding"]["ratio_sliding_over_fcn"] > 0
    hmm = fig["figures"]["hmm_smooth"]
    assert hmm["device_resident"]["fraction_of_bound"] > 0 and hmm["max_abs_diff_vs_cpu_numba"] < 1e-4
    learn = rec["learning"]
    assert "error" not in learn, learn
    assert learn["train"]["steps_done"] == 2 and learn["plan"]["width"] == 0.0625
    for k in ("foreground_iou", "foreground_iou_crf_refine"):
        assert 0.0 <= learn["test"][k] <= 1.0
    assert len([p for p in out.iterdir()]) <= 8  # what a `run` call brings back
