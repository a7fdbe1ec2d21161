"""`vidseg submit` and `vidseg jobs` against a real single-node SLURM (conftest.py's
session cluster): a --follow chain over synthetic videos with one broken input, status,
retry, cancel, an unknown dependency, and a 2-process torchrun training. Assertions read
squeue and the submission folders only, never sacct."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.cluster.videos import fix_broken, make_videos
from tests.conftest import ROOT, SAMPLE
from vidseg_cli.cluster.record import load_record
from vidseg_cli.cluster.status import LIVE, task_states


def vidseg(*args, cwd, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def wait_for(folder, timeout=180):
    """Until no task of the folder's jobs is pending or running; the final task states."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        states = task_states(load_record(folder))
        if states and not any(s in LIVE for s in states.values()):
            return states
        time.sleep(0.3)
    raise AssertionError(f"{folder}: still running after {timeout} s: {states}")


def _wait_running(job_id, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                               text=True).stdout.strip()
        if state == "RUNNING":
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not start within {timeout} s")


def test_chain_with_a_broken_input_status_and_retry(slurm_cluster, tmp_path):
    vids = make_videos(tmp_path / "v", 5)  # broken.mp4 first: in task 0 with vid0
    res = vidseg("submit", "--chunk", "2", "--parallel", "4", "--folder", "r/frames", "--parsable",
                 "extract-frames", *vids, "-o", "frames", "--fps", "5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    up = res.stdout.strip()
    res = vidseg("submit", "--folder", "r/props", "--follow", "r/frames", "propose",
                 "--method", "sliding", "-o", "props", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"#SBATCH --dependency=aftercorr:{up}" in (tmp_path / "r/props/job.sbatch").read_text()
    assert wait_for(tmp_path / "r/frames") == {0: "FAILED", 1: "COMPLETED", 2: "COMPLETED"}
    # Only the broken chunk's successor is cancelled; the others ran.
    assert wait_for(tmp_path / "r/props") == {0: "CANCELLED", 1: "COMPLETED", 2: "COMPLETED"}
    assert sorted(p.name for p in (tmp_path / "props").glob("*.h5")) == [
        f"vid{i}.proposals.h5" for i in range(1, 5)]

    st = vidseg("jobs", "status", "r/frames", cwd=tmp_path)
    assert st.returncode == 1 and "5 done, 1 failed" in st.stdout
    assert f"failed    {vids[0]} [task 0]: {vids[0]}: not a video file" in st.stdout
    st = vidseg("jobs", "status", "r/props", "--json", "-", cwd=tmp_path)
    assert json.loads(st.stdout)["counts"] == {"cancelled": 2, "done": 4}

    fix_broken(tmp_path / "v")
    # A job holding the whole node keeps the upstream retry pending while the downstream
    # retry is planned, so the downstream must depend on it (a finished upstream task
    # needs no dependency, and on a busy machine it could finish first).
    hold = subprocess.run(["sbatch", "--parsable", "--exclusive", "--wrap", "sleep 300",
                           f"--output={tmp_path}/hold.log"], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        _wait_running(hold)
        res = vidseg("jobs", "retry", "r/frames", cwd=tmp_path)
        assert res.returncode == 0 and "1 task(s)" in res.stdout, res.stderr
        res = vidseg("jobs", "retry", "r/props", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        up2 = load_record(tmp_path / "r/frames").jobs[-1]["job_id"]
        assert f"--dependency=aftercorr:{up2}" in (tmp_path / "r/props/retry-1.sbatch").read_text()
    finally:
        subprocess.run(["scancel", hold], check=False)
    wait_for(tmp_path / "r/props")
    for name in ("frames", "props"):
        st = vidseg("jobs", "status", f"r/{name}", cwd=tmp_path)
        assert st.returncode == 0 and "6 done" in st.stdout, st.stdout


def test_cancel_and_an_unknown_dependency(slurm_cluster, tmp_path):
    vids = make_videos(tmp_path / "v", 2, broken=False)
    hold = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 120", f"--output={tmp_path}/h.log"],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        res = vidseg("submit", "--folder", "r", "--after", hold, "extract-frames", *vids,
                     "-o", "o", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        res = vidseg("jobs", "cancel", "r", cwd=tmp_path)
        assert res.returncode == 0 and "cancelled job" in res.stderr
        assert set(wait_for(tmp_path / "r").values()) == {"CANCELLED"}
        st = vidseg("jobs", "status", "r", cwd=tmp_path)
        assert st.returncode == 1 and "2 cancelled" in st.stdout
    finally:
        subprocess.run(["scancel", hold], check=False)
    res = vidseg("submit", "--folder", "r2", "--after", "987654", "extract-frames", *vids, "-o", "o",
                 cwd=tmp_path)
    assert res.returncode == 2 and "987654: SLURM does not know this job" in res.stderr
    assert not (tmp_path / "r2").exists()


def synth_features(tmp_path, duration: str):
    """A 4-video, 2-class synthetic set of `duration` seconds and its features, made by the
    commands: (set folder, features folder)."""
    d, f, x = tmp_path / "synth", tmp_path / "frames", tmp_path / "feat"
    assert vidseg("synth", "-o", d, "--train", "4", "--test", "0", "--size", "64x48", "--duration",
                  duration, "--num-classes", "2", "--seed", "1", "-q", cwd=tmp_path).returncode == 0
    assert vidseg("extract-frames", *sorted((d / "videos").glob("*.mp4")), "-o", f, "-q",
                  cwd=tmp_path).returncode == 0
    assert vidseg("extract-features", f, "--weights", SAMPLE / "weights" / "backbone_synth.ckpt",
                  "-o", x, "-q", cwd=tmp_path).returncode == 0
    return d, x


def test_two_process_torchrun_training(slurm_cluster, tmp_path):
    """Needs DDP in `vidseg train` (RANK/WORLD_SIZE/LOCAL_RANK, gloo on CPU)."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("vidseg_cli.train.distributed") is None:
        pytest.skip("vidseg train has no DDP here (vidseg_cli/train/distributed.py, issue 17 item 4)")
    d, x = synth_features(tmp_path, "4,5")
    res = vidseg("submit", "--procs-per-node", "2", "--cpus", "2", "--folder", "r", "--wait",
                 "train", "fsn", x, "--gt", d, "--hidden", "16", "--max-steps", "3", "--min-action-frames", "0",
                 "--batch-size", "4", "-o", "run",
                 cwd=tmp_path, timeout=500)
    script = (tmp_path / "r" / "job.sbatch").read_text()
    assert "torch.distributed.run --standalone --nproc-per-node=2" in script
    log = "\n".join(p.read_text() for p in (tmp_path / "r" / "logs").glob("*.log"))
    assert res.returncode == 0, res.stderr + log
    assert (tmp_path / "run" / "last.ckpt").exists()
    assert vidseg("jobs", "status", "r", cwd=tmp_path).returncode == 0
