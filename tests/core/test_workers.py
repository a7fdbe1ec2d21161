"""Worker processes of `--jobs N` die with their parent (core/workers.py): after kill -9
of the parent no worker remains and no output appears; after SIGTERM the parent exits
143 with no worker and no temporary file left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds worker processes through /proc")


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(bikes: Path, tmp_path: Path, stderr=subprocess.PIPE
           ) -> tuple[subprocess.Popen, Path, set[int]]:
    """A --jobs 2 extract-frames run over six videos, once both workers are writing; with
    the processes it started (workers, loky's resource tracker)."""
    videos = []
    for i in range(6):
        v = tmp_path / f"v{i}.mp4"
        v.symlink_to(bikes)
        videos.append(str(v))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidseg_cli.cli.main", "extract-frames", *videos, "-o", str(out),
         "--codec", "gzip", "--jobs", "2", "-q"],
        stderr=stderr, text=True)
    deadline = time.time() + 60
    workers: set[int] = set()
    while time.time() < deadline:
        workers = {p for p in _children(proc.pid) if b"loky" in _cmdline(p)}
        if len(workers) >= 2 and len(list(out.glob(".vidseg-tmp-*"))) >= 2:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the two workers never started writing")
    return proc, out, workers


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if _running(p)}


def test_kill_9_of_the_parent_kills_its_workers(bikes, tmp_path):
    # stderr not a pipe: a surviving worker would hold it open
    proc, out, workers = _start(bikes, tmp_path, stderr=subprocess.DEVNULL)
    written = sorted(p.name for p in out.glob("*.frames.h5"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = _wait_gone(workers, 5)
    for p in left:  # don't leave them behind when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {sorted(left)} outlived their parent"
    time.sleep(1)
    assert sorted(p.name for p in out.glob("*.frames.h5")) == written


def test_sigterm_to_the_parent_stops_its_workers_and_removes_their_temporary_files(bikes,
                                                                                   tmp_path):
    proc, out, workers = _start(bikes, tmp_path)
    proc.send_signal(signal.SIGTERM)
    try:
        err = proc.communicate(timeout=60)[1]
    finally:
        left = _wait_gone(workers, 5)
        for p in left:
            os.kill(p, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not left
    assert list(out.glob(".vidseg-tmp-*")) == []


IDLE = """
import sys, time
from vidseg_cli.core import workers
results = workers.ordered(time.sleep, [(0.0,), (0.0,)], 2)
print(list(results), flush=True)  # both workers now idle, waiting for more
time.sleep(600)
"""


def test_idle_workers_die_with_their_parent(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", IDLE], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "[None, None]"
    workers = {p for p in _children(proc.pid) if b"loky" in _cmdline(p)}
    assert len(workers) >= 2
    proc.kill()
    proc.wait(timeout=30)
    left = _wait_gone(workers, 5)
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {sorted(left)} outlived their parent"
