"""scripts/papers/step.py, the one-line steps of makefiles/papers.mk: the command it runs
here, and under SLURM=1 (with submit's --local, which runs the same tasks without a
cluster) the submission folders it chains, and that a rerun submits nothing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SAMPLE

STEP = ROOT / "scripts" / "papers" / "step.py"
ECHO = f"{sys.executable} -c \"import sys; print(repr(sys.argv[1:]))\""


def step(*args, env=None, vidseg=ECHO) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "VIDSEG": vidseg, **(env or {})}
    return subprocess.run([sys.executable, str(STEP), *map(str, args)], capture_output=True,
                          text=True, env=e, cwd=ROOT)


def argv_of(res) -> list[str]:
    return ast.literal_eval(res.stdout.strip().splitlines()[-1])


def test_local_command_inputs_and_globs(tmp_path):
    for n in ("b", "a"):
        (tmp_path / f"{n}.mp4").write_bytes(b"")
    res = step("frames", "--in", tmp_path / "*.mp4", tmp_path / "x", "--stamp", tmp_path / "s",
               "--", "extract-frames", "-o", tmp_path / "out", env={"SLURM": "0"})
    assert res.returncode == 0, res.stderr
    assert argv_of(res) == ["extract-frames", str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"),
                            str(tmp_path / "x"), "-o", str(tmp_path / "out")]
    assert (tmp_path / "s").is_file()


def test_local_training_resumes_or_restarts(tmp_path):
    run = tmp_path / "run"
    args = ("t", "--in", "F", "--", "train", "fsn", "--gt", "G", "-o", run)
    assert argv_of(step(*args)) == ["train", "fsn", "F", "--gt", "G", "-o", str(run)]
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert argv_of(step(*args))[-1] == "--overwrite"  # stopped before its first checkpoint
    (run / "last.ckpt").write_bytes(b"")
    assert argv_of(step(*args))[-1] == "--resume"


def test_a_failing_stage_leaves_no_stamp(tmp_path):
    res = step("x", "--stamp", tmp_path / "s", "--", "extract-frames", tmp_path / "nothing.mp4",
               "-o", tmp_path / "o", vidseg=f"{sys.executable} -m vidseg_cli.cli.main")
    assert res.returncode == 2 and not (tmp_path / "s").exists()


def test_slurm_chain_follows_then_submits_nothing(tmp_path):
    """Two chained per-video steps through `vidseg submit --local`: the second follows the first's folder; a rerun submits nothing
    and leaves the stamps alone."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for v in ("bikes.mp4", "carphone_pristine.mp4"):
        os.symlink(SAMPLE / "videos" / v, videos / v)
    work = tmp_path / "w"
    env = {"SLURM": "1", "PAPER_WORK": str(work), "SUBMIT_OPTS": "--local"}
    real = f"{sys.executable} -m vidseg_cli.cli.main"
    one = ("frames", "--in", videos / "*.mp4", "--stamp", work / "s1", "--", "extract-frames",
           "--end", "0.8", "--size", "64x48", "-o", work / "frames", "-q")
    two = ("scores", "--in", work / "frames", "--follow", "frames", "--stamp", work / "s2", "--",
           "segment-3d", "--model", "sep3d", "--weights", SAMPLE / "weights" / "sep3d_synth.ckpt",
           "--device", "cpu", "-o", work / "scores", "-q")
    for args in (one, two):
        res = step(*args, env=env, vidseg=real)
        assert res.returncode == 0, res.stdout + res.stderr
    followed = (work / "slurm" / "frames.folder").read_text().strip()
    rec = json.loads(Path((work / "slurm" / "scores.folder").read_text().strip(), "submit.json")
                     .read_text())
    assert "--follow" in rec["argv"] and followed in rec["argv"]
    assert sorted(p.name for p in (work / "scores").glob("*.h5")) == [
        "bikes.scores.h5", "carphone_pristine.scores.h5"]
    stamps = [(work / s).stat().st_mtime_ns for s in ("s1", "s2")]
    folders = sorted((work / "slurm").glob("*-*"))
    for args in (one, two):
        res = step(*args, env=env, vidseg=real)
        assert res.returncode == 0 and "nothing submitted" in res.stderr, res.stderr
    assert sorted((work / "slurm").glob("*-*")) == folders
    assert not (work / "slurm" / "frames.folder").exists()
    assert [(work / s).stat().st_mtime_ns for s in ("s1", "s2")] == stamps
