"""`vidseg submit`: arguments checked at once, nothing to do, --dry-run, and the --local
backend end to end (a chain over synthetic videos with a broken input, status, retry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cluster.videos import fix_broken, make_videos
from tests.conftest import ROOT


def vidseg(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "vidseg_cli.cli.main", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_videos(tmp_path_factory.mktemp("v"), 3)


def test_a_typo_fails_at_once_and_writes_nothing(tmp_path, videos):
    res = vidseg("submit", "--local", "extract-frames", *videos, "-o", "out", "--fpss", "3",
                 cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "vidseg submit: error: extract-frames: No such option '--fpss'. Did you mean '--fps'?"]
    assert not list(tmp_path.iterdir())
    res = vidseg("submit", "--local", "extract-framez", "a", cwd=tmp_path)
    assert res.returncode == 2 and "extract-framez: not a stage" in res.stderr


def test_sbatch_missing_is_one_line_naming_it(tmp_path, videos):
    res = vidseg("submit", "extract-frames", *videos, "-o", "out", cwd=tmp_path,
                 env={"PATH": "/nonexistent"})
    assert res.returncode == 2
    assert res.stderr.startswith("vidseg submit: error: sbatch: not found on PATH")
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_dry_run_prints_the_script_and_writes_nothing(tmp_path, videos):
    res = vidseg("submit", "--dry-run", "--chunk", "2", "--parallel", "1", "--cpus", "2",
                 "extract-frames", *videos, "-o", "out", "--fps", "5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "#SBATCH --array=0-1%1" in res.stdout and "#SBATCH --cpus-per-task=2" in res.stdout
    assert '"${INPUTS[@]}" -o out --fps 5 --jobs $CPUS --quiet --json' in res.stdout
    assert not list(tmp_path.iterdir())


def test_local_chain_with_a_broken_input_then_status_and_retry(tmp_path):
    vids = make_videos(tmp_path / "v", 3)  # broken.mp4 first: chunk 0 = broken + vid0
    res = vidseg("submit", "--local", "--chunk", "2", "--parallel", "2", "--folder", "r/frames",
                 "extract-frames", *vids, "-o", "frames", "--fps", "5", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert sorted(p.name for p in (tmp_path / "frames").glob("*.h5")) == [
        "vid0.frames.h5", "vid1.frames.h5", "vid2.frames.h5"]
    run = tmp_path / "r" / "frames"
    assert {p.name for p in run.iterdir()} == {"job.sbatch", "manifest.txt", "submit.json",
                                               "logs", "summaries"}
    rec = json.loads((run / "submit.json").read_text())
    assert rec["chunk"] == 2 and rec["n_tasks"] == 2 and rec["jobs"][0]["exit_codes"] == {"0": 1, "1": 0}
    summary = json.loads((run / "summaries" / "0.json").read_text())
    assert [f["input"] for f in summary["failed"]] == [str(vids[0])]

    res = vidseg("submit", "--local", "--folder", "r/props", "--follow", "r/frames",
                 "propose", "--method", "sliding", "-o", "props", cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # task 0 not started: its upstream failed
    assert sorted(p.name for p in (tmp_path / "props").glob("*.h5")) == [
        "vid1.proposals.h5", "vid2.proposals.h5"]

    st = vidseg("jobs", "status", "r/frames", cwd=tmp_path)
    assert st.returncode == 1
    assert "3 done, 1 failed" in st.stdout
    assert f"failed    {vids[0]} [task 0]: {vids[0]}: not a video file" in st.stdout
    st = vidseg("jobs", "status", "r/props", "--json", "-", cwd=tmp_path)
    doc = json.loads(st.stdout)
    assert st.returncode == 1 and doc["counts"] == {"cancelled": 2, "done": 2}

    fix_broken(tmp_path / "v")
    assert vidseg("jobs", "retry", "r/frames", cwd=tmp_path).returncode == 0
    assert vidseg("jobs", "retry", "r/props", cwd=tmp_path).returncode == 0
    for name in ("frames", "props"):
        st = vidseg("jobs", "status", f"r/{name}", cwd=tmp_path)
        assert st.returncode == 0 and "4 done" in st.stdout, st.stdout
    rec = json.loads((run / "submit.json").read_text())
    assert [j["tasks"] for j in rec["jobs"]] == [[0, 1], [0]] and (run / "retry-1.sbatch").exists()
    res = vidseg("jobs", "retry", "r/frames", cwd=tmp_path)
    assert res.returncode == 0 and "nothing to retry" in res.stderr


def test_nothing_to_do_submits_nothing(tmp_path):
    vids = make_videos(tmp_path / "v", 1, broken=False)
    assert vidseg("extract-frames", *vids, "-o", "o", "--fps", "5", cwd=tmp_path).returncode == 0
    res = vidseg("submit", "--local", "extract-frames", *vids, "-o", "o", cwd=tmp_path)
    assert res.returncode == 0 and "nothing to do" in res.stderr
    assert not (tmp_path / "o" / "_slurm").exists()


def test_json_is_submits_own_for_arrays(tmp_path, videos):
    res = vidseg("submit", "--dry-run", "extract-frames", *videos, "-o", "o", "--json", "x.json",
                 cwd=tmp_path)
    assert res.returncode == 2 and "--json: submit writes each task's summary" in res.stderr
